"""The Go text/template subset of --format (minirun/gotemplate.py), against the outputs
Go's text/template gives for the same templates and data."""
import pytest

from minirun.gotemplate import TemplateError, go_str, parse, render

DATA = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Pid": 4242, "Running": True, "ExitCode": 0, "Status": "running"},
    "Config": {"Cmd": ["sleep", "100"], "Labels": {"b": "2", "a": "1", "x.y": "z"},
               "Env": [], "Entrypoint": None},
    "NetworkSettings": {"IPAddress": "10.88.0.2",
                        "Networks": {"bridge": {"IPAddress": "10.88.0.2"},
                                     "alpha": {"IPAddress": "10.89.0.5"}},
                        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
    "Mounts": [{"Source": "/a", "Destination": "/x"}, {"Source": "/b", "Destination": "/y"}],
    "Count": 3,
}


@pytest.mark.parametrize("tmpl,want", [
    ("{{.State.Pid}}", "4242"),
    ("{{.NetworkSettings.IPAddress}}", "10.88.0.2"),
    ("pid={{ .State.Pid }}!", "pid=4242!"),
    ("{{.State.Running}}", "true"),
    ("{{.Config.Cmd}}", "[sleep 100]"),
    ("{{.Config.Labels}}", "map[a:1 b:2 x.y:z]"),
    ("{{.Config.Entrypoint}}", "<no value>"),
    ("{{json .Config.Cmd}}", '["sleep","100"]'),
    ("{{json .State}}", '{"Pid":4242,"Running":true,"ExitCode":0,"Status":"running"}'),
    ("{{.Config.Cmd | json}}", '["sleep","100"]'),
    ("{{json .Config.Entrypoint}}", "null"),
    ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/a:/x /b:/y "),
    ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}};{{end}}", "0=/a;1=/b;"),
    ("{{range $m := .Mounts}}{{$m.Destination}}{{end}}", "/x/y"),
    ("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}} {{end}}",
     "alpha:10.89.0.5 bridge:10.88.0.2 "),
    ("{{range .Config.Env}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Nope}}{{end}}", None),  # a missing key is an error (Docker: missingkey=error)
    ('{{index .Config.Labels "x.y"}}', "z"),
    ('{{index .Config.Labels "missing"}}', "<no value>"),
    ("{{index .Config.Cmd 1}}", "100"),
    ('{{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}}', "8080"),
    ('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', "8080"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}up{{else}}down{{end}}", "down"),
    ("{{if eq .State.Status \"exited\"}}E{{else if eq .State.Status \"running\"}}R{{else}}?{{end}}",
     "R"),
    ("{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}", "ok"),
    ("{{or .Config.Entrypoint \"none\"}}", "none"),
    ("{{and .State.Running .Count}}", "3"),
    ("{{with .State}}{{.Pid}}{{end}}", "4242"),
    ("{{with .Config.Env}}x{{else}}no env{{end}}", "no env"),
    ("{{println .Name}}", "/web\n"),
    ("{{println \"a\" 1 2}}", "a 1 2\n"),
    ("{{print \"a\" 1 2 \"b\"}}", "a1 2b"),
    ("{{printf \"%s has pid %d\" .Name .State.Pid}}", "/web has pid 4242"),
    ("{{printf \"%-6s|\" \"ab\"}}", "ab    |"),
    ("{{printf \"%q\" .Name}}", '"/web"'),
    ("{{lower \"ABC\"}}{{upper \"def\"}}", "ABCdef".lower()[:3] + "DEF"),
    ("{{.Name | upper}}", "/WEB"),
    ("{{title \"hello world\"}}", "Hello World"),
    ('{{join .Config.Cmd ","}}', "sleep,100"),
    ('{{split "a,b,c" ","}}', "[a b c]"),
    ('{{len .Mounts}} {{len .Config.Labels}} {{len "abc"}}', "2 3 3"),
    ('{{truncate .Id 3}}', "abc"),
    ('{{pad .Id 1 2}}|', " abc123  |"),
    ("{{$p := .State.Pid}}{{$p}}", "4242"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{range .Mounts}}{{$.Name}}{{end}}", "/web/web"),
    ("{{- \" a \" -}}  \n {{\"b\"}}", " a b"),
    ("x  {{- /* a comment */ -}}  y", "xy"),
    ("{{`raw\\t`}}", "raw\\t"),
    ('{{"tab\\there"}}', "tab\there"),
    ("{{3}} {{-2}} {{1.5}} {{true}} {{nil | print}}", "3 -2 1.5 true <nil>"),
    ("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}} {{ne \"a\" \"b\"}}", "true true false true true"),
    ("{{eq .Count 1 2 3}}", "true"),
    ("{{range .Mounts}}{{if eq .Source \"/b\"}}{{break}}{{end}}{{.Source}}{{end}}", "/a"),
    ("{{range .Mounts}}{{if eq .Source \"/a\"}}{{continue}}{{end}}{{.Source}}{{end}}", "/b"),
    ("{{slice \"abcdef\" 1 3}}", "bc"),
    ("{{.}}", None),  # printed below with a simple value
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{json .}}", None),
])
def test_render(tmpl, want):
    if tmpl == "{{.}}":
        assert render(tmpl, "plain") == "plain"
        return
    if tmpl == "{{json .}}":
        assert render(tmpl, {"a": "<&>", "b": [1, None]}) == '{"a":"<&>","b":[1,null]}'
        return
    if want is None:
        with pytest.raises(TemplateError):
            render(tmpl, DATA)
        return
    assert render(tmpl, DATA) == want


def test_methods_on_a_row():
    class Row(dict):
        pass
    row = Row(Names="web")
    row.methods = {"Label": lambda k: {"a": "1"}.get(k, ""), "Ports": lambda: "80/tcp"}
    assert render('{{.Names}} {{.Label "a"}} {{.Ports}}', row) == "web 1 80/tcp"


@pytest.mark.parametrize("tmpl,msg", [
    ("{{.State.Pid", "unclosed action"),
    ("{{foo .X}}", 'function "foo" not defined'),
    ("{{if .X}}a", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{range .X}}{{else}}{{else}}{{end}}", "unexpected {{else}}"),
    ("{{}}", "missing value"),
    ("{{(.X}}", "unclosed left paren"),
    ("{{.X)}}", "unexpected right paren"),
    ("{{define \"x\"}}{{end}}", "not supported"),
    ("{{.X | }}", "missing"),
    ("{{@}}", "unexpected"),
    ("{{/* open }}", "unclosed comment"),
])
def test_parse_errors_are_one_line(tmpl, msg):
    with pytest.raises(TemplateError) as e:
        parse(tmpl)
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("template: :1:")


@pytest.mark.parametrize("tmpl,msg", [
    ("{{.Nope}}", 'map has no entry for key "Nope"'),
    ("{{.State.Nope}}", 'at <.State.Nope>: map has no entry for key "Nope"'),
    ("{{.Config.Entrypoint.X}}", "nil pointer evaluating"),
    ("{{.Id.X}}", "can't evaluate field X in type string"),
    ("{{index .Config.Cmd 5}}", "index out of range"),
    ("{{$nope}}", "undefined variable: $nope"),
    ("{{len 3}}", "len of type"),
    ("{{.Name 1}}", "not a method"),
    ("{{join .Name \",\"}}", "expected []string"),
    ("{{eq \"a\" 1}}", "incompatible types"),
    ("{{range .Id}}{{end}}", "range can't iterate"),
])
def test_execution_errors(tmpl, msg):
    with pytest.raises(TemplateError) as e:
        render(tmpl, DATA)
    assert msg in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_multiline_reports_the_line():
    with pytest.raises(TemplateError) as e:
        parse("a\nb\n{{nope}}")
    assert str(e.value).startswith("template: :3:")


def test_go_str():
    assert go_str([1, "a", [True, None]]) == "[1 a [true <nil>]]"
    assert go_str({"b": 1, "a": {"c": []}}) == "map[a:map[c:[]] b:1]"
    assert go_str(2.0) == "2" and go_str(0.25) == "0.25" and go_str(1e21) == "1e+21"


def test_a_template_renders_many_times():
    t = parse("{{.A}}-")
    assert [t.render({"A": i}) for i in range(3)] == ["0-", "1-", "2-"]
