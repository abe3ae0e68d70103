"""Docker-shaped views (minirun/docker_view.py) and the log format (minirun/logfile.py),
on records made here: times, ps columns and filters, inspect's shape, tables."""
import io
import json
import time

import pytest

from minirun import docker_view as v
from minirun import logfile
from minirun.errors import UsageError
from minirun.gotemplate import TemplateError
from minirun.record import Attachment, Config, Container, Port
from minirun.spec import Resources, Volume
from minirun.state import Paths

NOW = 1_700_000_000.0


def container(tmp_path, name="web", state="running", created=NOW - 90, started=NOW - 60,
              finished=None, exit_code=None, command=("sh", "-c", "echo hello; sleep 1000"),
              network="bridge", **cfg):
    config = Config(rootfs="/srv/rootfs", command=command, hostname="h1",
                    env={"PATH": "/bin", "A": "b"}, **cfg)
    att = None
    if network == "bridge":
        att = Attachment("bridge", netns=name, network="bridge", bridge="minirun0",
                         subnet="10.99.0.0/24", gateway="10.99.0.1", veth="vethabc",
                         ip="10.99.0.2", mac="02:00:0a:63:00:02",
                         ports=(Port(None, 8080, 80, "tcp"),))
    elif network == "none":
        att = Attachment("none", netns=name)
    return Container(Paths(tmp_path, tmp_path), (name * 64)[:64].ljust(64, "0"), name,
                     config, created=created, state=state, pid=4242, started=started,
                     finished=finished, exit_code=exit_code, network=att)


@pytest.mark.parametrize("secs,want", [
    (0, "Less than a second"), (0.9, "Less than a second"), (1, "1 second"),
    (2, "2 seconds"), (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"),
    (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"), (13 * 86400, "13 days"), (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"), (60 * 86400, "2 months"), (729 * 86400, "24 months"),
    (730 * 86400, "2 years"),
])
def test_human_duration_as_docker(secs, want):
    assert v.human_duration(secs) == want


def test_rfc3339():
    assert v.rfc3339(None) == v.rfc3339(0) == "0001-01-01T00:00:00Z"
    assert v.rfc3339(1700000000.5) == "2023-11-14T22:13:20.5Z"
    assert v.rfc3339(1700000000.0) == "2023-11-14T22:13:20Z"
    assert v.rfc3339(1700000000.123456789).startswith("2023-11-14T22:13:20.123456")


def test_status_texts(tmp_path):
    assert v.status_text(container(tmp_path, started=NOW - 0.2), "running", NOW) == \
        "Up Less than a second"
    assert v.status_text(container(tmp_path), "running", NOW) == "Up About a minute"
    assert v.status_text(container(tmp_path), "paused", NOW) == "Up About a minute (Paused)"
    c = container(tmp_path, state="stopped", finished=NOW - 2, exit_code=0)
    assert v.status_text(c, "exited", NOW) == "Exited (0) 2 seconds ago"
    c = container(tmp_path, state="stopped", finished=NOW - 7200, exit_code=137)
    assert v.status_text(c, "exited", NOW) == "Exited (137) 2 hours ago"
    assert v.status_text(container(tmp_path), "created", NOW) == "Created"
    assert v.status_text(container(tmp_path), "dead", NOW) == "Dead"


def test_ps_row(tmp_path):
    c = container(tmp_path, exposed_ports=("80/tcp", "443/tcp"), labels={"b": "2", "a": "1"})
    r = v.ps_row(c, "running", NOW)
    assert r["ID"] == c.id[:12] and r["Names"] == "web" and r["Image"] == "/srv/rootfs"
    assert r["Command"] == '"sh -c echo hello; s…"'  # 20 characters, Docker's ellipsis
    assert r["RunningFor"] == "About a minute ago" and r["Status"] == "Up About a minute"
    assert r["Ports"] == "0.0.0.0:8080->80/tcp, 443/tcp"
    assert r["Labels"] == "a=1,b=2" and r["Pid"] == 4242 and r["IPAddress"] == "10.99.0.2"
    full = v.ps_row(c, "running", NOW, trunc=False)
    assert full["ID"] == c.id and full["Command"] == '"sh -c echo hello; sleep 1000"'
    assert v.render_rows('{{.Label "a"}}|{{.Networks}}', [r], v.PS_DEFAULT, {}) == ["1|bridge"]
    stopped = v.ps_row(container(tmp_path, state="stopped", exit_code=1), "exited", NOW)
    assert stopped["Pid"] == ""


def test_ps_table_layout_is_dockers(tmp_path):
    rows = [v.ps_row(container(tmp_path), "running", NOW)]
    lines = v.render_rows(None, rows, v.PS_DEFAULT, v.PS_HEADERS)
    head = lines[0]
    for title in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"):
        assert title in head
    # columns start where the header's do, three spaces at least between them
    assert lines[1].index("/srv/rootfs") == head.index("IMAGE")
    assert lines[1].rindex("web") == head.index("NAMES") and lines[1].endswith("web")
    assert v.tabwrite(["a\tbb\tc", "dddd\te\tf"]) == ["a         bb        c",
                                                      "dddd      e         f"]
    assert v.tabwrite(["x" * 12 + "\ty"]) == ["x" * 12 + "   y"]


def test_ps_table_is_the_default_template(tmp_path):
    """ps without --format builds its table directly: the same lines as PS_DEFAULT
    rendered through the template, whatever the states, commands and names."""
    chosen = [(container(tmp_path), "running"),
              (container(tmp_path, name="b", state="stopped", exit_code=3, finished=NOW - 5),
               "exited"),
              (container(tmp_path, name="longer-name-here", command=("a\"b", "tab\there",
                                                                      "new\nline", "é" * 30),
                         network="none"), "created"),
              (container(tmp_path, name="p"), "running")]
    chosen[-1][0].paused = True
    for trunc in (True, False):
        rows = [v.ps_row(c, w, NOW, trunc=trunc) for c, w in chosen]
        assert v.ps_table(chosen, NOW, trunc=trunc) == v.render_rows(
            None, rows, v.PS_DEFAULT, v.PS_HEADERS)
    assert v.ps_table([], NOW) == v.render_rows(None, [], v.PS_DEFAULT, v.PS_HEADERS)


def test_format_forms(tmp_path):
    rows = [v.ps_row(container(tmp_path, name=n), "running", NOW) for n in ("a", "b")]
    assert v.render_rows("{{.Names}}", rows, v.PS_DEFAULT, v.PS_HEADERS) == ["a", "b"]
    assert v.render_rows("table {{.Names}}\\t{{.Pid}}", rows, v.PS_DEFAULT,
                         v.PS_HEADERS) == ["NAMES     PID", "a         4242", "b         4242"]
    assert v.render_rows("table", rows, v.PS_DEFAULT, v.PS_HEADERS)[0].startswith(
        "CONTAINER ID")
    assert [json.loads(x)["Names"] for x in
            v.render_rows("json", rows, v.PS_DEFAULT, v.PS_HEADERS)] == ["a", "b"]
    for fmt in (None, "{{.Names}}", "table {{.Names}}"):  # -q wins over --format
        assert v.render_rows(fmt, rows, v.PS_DEFAULT, v.PS_HEADERS, "ID", quiet=True) == [
            rows[0]["ID"], rows[1]["ID"]]
    assert v.render_rows("{{.Names}}\\n", rows[:1], "", {}) == ["a\n"]
    assert v.render_rows("table {{.Label \"x\"}}", rows[:1], "", {})[0].strip() == "LABEL"
    with pytest.raises(TemplateError):
        v.render_rows("{{.Nope}}", rows, v.PS_DEFAULT, v.PS_HEADERS)


def test_filters(tmp_path):
    web = container(tmp_path, "web", labels={"tier": "front", "x": ""}, image="busybox:latest",
                    image_id="ab" * 32)
    db = container(tmp_path, "db", state="stopped", exit_code=3, finished=NOW - 5,
                   network="none", labels={"tier": "back"})
    pairs = [(web, "running"), (db, "exited")]

    def names(*specs):
        f = v.parse_filters(specs)
        return sorted(c.name for c, w in pairs if v.matches(c, w, f))
    assert names("name=we") == ["web"] and names("name=^db$") == ["db"]
    assert names("name=^/web") == ["web"]
    assert names("name=web", "name=db") == ["db", "web"]          # OR within a key
    assert names("name=web", "status=exited") == []               # AND across keys
    assert names("status=exited") == ["db"] and names("status=running") == ["web"]
    assert names("label=tier") == ["db", "web"] and names("label=tier=back") == ["db"]
    assert names("label=x=") == ["web"] and names("label=nope") == []
    assert names("ancestor=busybox") == ["web"] and names("ancestor=busybox:latest") == ["web"]
    assert names("ancestor=abab") == ["web"] and names("ancestor=/srv/rootfs") == ["db", "web"]
    assert names("network=bridge") == ["web"] and names("network=none") == ["db"]
    assert names(f"id={db.id[:5]}") == ["db"] and names("exited=3") == ["db"]
    for bad in ("nope=1", "status=sleeping", "name", "exited=x"):
        with pytest.raises(UsageError):
            v.parse_filters([bad])


def test_select_newest_first(tmp_path, monkeypatch):
    import minirun.state
    cs = [container(tmp_path, n, created=NOW - i) for i, n in enumerate("abc")]
    cs.append(container(tmp_path, "d", state="stopped", created=NOW + 1, exit_code=0))
    words = {"a": "running", "b": "running", "c": "running", "d": "exited"}
    monkeypatch.setattr(minirun.state, "docker_status", lambda c: words[c.name])
    pick = lambda *a: [c.name for c, w in v.select(cs, *a)]  # noqa: E731
    assert pick({}, False, None) == ["a", "b", "c"]
    assert pick({}, True, None) == ["d", "a", "b", "c"]
    assert pick({}, False, 1) == ["d"]                         # -l: any state
    assert pick({}, False, 2) == ["d", "a"]
    assert pick({}, False, 0) == pick({}, False, -1) == ["a", "b", "c"]  # no limit
    assert pick({"status": ["exited"]}, False, None) == ["d"]  # no -a needed


def test_inspect_shape(tmp_path):
    c = container(tmp_path, volumes=(Volume("/h", "/c", True),), exposed_ports=("80/tcp",),
                  ports=(Port(None, 8080, 80, "tcp"),),
                  resources=Resources(memory=64 << 20, cpus=1.5, pids_limit=50),
                  image="busybox", image_id="cd" * 32, labels={"k": "v"})
    d = v.container_inspect(c, "running")
    assert d["Id"] == c.id and d["Name"] == "/web" and d["Path"] == "sh"
    assert d["Args"] == ["-c", "echo hello; sleep 1000"]
    assert d["Created"] == v.rfc3339(c.created)
    st = d["State"]
    assert st["Status"] == "running" and st["Running"] and st["Pid"] == 4242
    assert st["FinishedAt"] == "0001-01-01T00:00:00Z" and st["OOMKilled"] is False
    for k in ("Paused", "Restarting", "Dead", "ExitCode", "Error", "StartedAt"):
        assert k in st
    assert d["Image"] == "sha256:" + "cd" * 32
    cfg = d["Config"]
    assert cfg["Image"] == "busybox" and cfg["Cmd"] == list(c.config.command)
    assert cfg["Env"] == ["PATH=/bin", "A=b"] and cfg["Labels"] == {"k": "v"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}} and cfg["Entrypoint"] is None
    for k in ("Hostname", "WorkingDir", "User"):
        assert k in cfg
    hc = d["HostConfig"]
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert hc["Binds"] == ["/h:/c:ro"] and hc["NetworkMode"] == "bridge"
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 1_500_000_000
    assert hc["PidsLimit"] == 50 and hc["Privileged"] is False
    assert hc["ReadonlyRootfs"] is False
    ns = d["NetworkSettings"]
    assert ns["IPAddress"] == "10.99.0.2" and ns["IPPrefixLen"] == 24
    assert ns["Gateway"] == "10.99.0.1" and ns["MacAddress"] == "02:00:0a:63:00:02"
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert ns["Networks"]["bridge"]["IPAddress"] == "10.99.0.2"
    assert d["Mounts"][0]["Source"] == "/h" and d["Mounts"][0]["RW"] is False
    mr = d["Minirun"]
    assert mr["HostPid"] == 4242 and mr["HostVeth"] == "vethabc" and mr["Netns"] == "web"
    assert "Journal" in mr
    json.dumps(d)  # all JSON
    stopped = v.container_inspect(container(tmp_path, state="stopped", exit_code=2,
                                            finished=NOW), "exited")
    assert stopped["State"]["Pid"] == 0 and stopped["State"]["ExitCode"] == 2
    assert stopped["State"]["Running"] is False
    assert stopped["Minirun"]["HostPid"] is None


def test_records_with_fields_of_other_versions(tmp_path):
    """Fields another minirun may add (restart policy, entrypoint) are read when there."""
    c = container(tmp_path)
    assert v.container_inspect(c, "running")["HostConfig"]["RestartPolicy"]["Name"] == "no"

    class Cfg:
        def __init__(self, base, **extra):
            self.__dict__.update(base._asdict(), **extra)
    c.config = Cfg(c.config, restart="on-failure:3", entrypoint=("/init",))
    d = v.container_inspect(c, "running")
    assert d["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert d["Path"] == "/init" and d["Config"]["Entrypoint"] == ["/init"]


def test_network_views(tmp_path):
    from minirun.network.networks import Network
    net = Network("lesson", "192.168.15.0/24", "192.168.15.1", "mr-lesson", created=NOW)
    c = container(tmp_path)
    d = v.network_inspect(net, [c])
    assert d["Name"] == "lesson" and len(d["Id"]) == 64 and d["Driver"] == "bridge"
    assert d["IPAM"]["Config"] == [{"Subnet": "192.168.15.0/24", "Gateway": "192.168.15.1"}]
    assert d["Containers"][c.id]["Name"] == "web"
    assert d["Containers"][c.id]["IPv4Address"] == "10.99.0.2/24"
    assert d["Options"]["com.docker.network.bridge.name"] == "mr-lesson"
    assert d["Labels"] == {} and d["Minirun"]["Containers"]["web"]["HostVeth"] == "vethabc"
    r = v.network_row(net, 1)
    assert r["ID"] == d["Id"][:12] and r["Containers"] == "1"


# -- logs --------------------------------------------------------------------------------

def test_parse_time():
    now = 1_700_000_000.0
    assert logfile.parse_time("10m", now) == now - 600
    assert logfile.parse_time("1h30m", now) == now - 5400
    assert logfile.parse_time("1.5s", now) == now - 1.5
    assert logfile.parse_time("1700000000", now) == 1_700_000_000
    assert logfile.parse_time("1700000000.25", now) == 1_700_000_000.25
    assert logfile.parse_time("2023-11-14T22:13:20Z", now) == 1_700_000_000
    assert logfile.parse_time("2023-11-14T22:13:20.5Z", now) == 1_700_000_000.5
    assert logfile.parse_time("2023-11-14T23:13:20+01:00", now) == 1_700_000_000
    assert logfile.parse_time("2023-11-14T22:13:20.123456789Z", now) == \
        pytest.approx(1_700_000_000.123456789)
    for bad in ("yesterday", "10x", "2023-13-45T00:00:00Z"):
        with pytest.raises(UsageError):
            logfile.parse_time(bad, now)


def _log(tmp_path, records):
    p = tmp_path / "container.log"
    with open(p, "wb") as f:
        for text, stream, t in records:
            f.write(json.dumps({"log": text, "stream": stream,
                                "time": v.rfc3339(t)}).encode() + b"\n")
    return p


def _read(path, **kw):
    out = {"stdout": io.BytesIO(), "stderr": io.BytesIO()}
    opts = logfile.ReadOptions.parse(kw.pop("tail", "all"), kw.pop("timestamps", False),
                                     kw.pop("since", None), kw.pop("until", None), now=NOW)
    logfile.read([path], opts, out, **kw)
    return out["stdout"].getvalue().decode(), out["stderr"].getvalue().decode()


def test_read_streams_tail_times(tmp_path):
    p = _log(tmp_path, [("one\n", "stdout", NOW - 30), ("oops\n", "stderr", NOW - 20),
                        ("two\n", "stdout", NOW - 10), ("par", "stdout", NOW - 5),
                        ("tial\n", "stdout", NOW - 5)])
    assert _read(p) == ("one\ntwo\npartial\n", "oops\n")
    assert _read(p, tail="2") == ("partial\n", "")
    assert _read(p, tail="0") == ("", "")
    assert _read(p, tail="-1") == ("one\ntwo\npartial\n", "oops\n")
    assert _read(p, since="15s") == ("two\npartial\n", "")
    assert _read(p, until="15s") == ("one\n", "oops\n")
    assert _read(p, since=str(NOW - 25), until=str(NOW - 15)) == ("", "oops\n")
    out, err = _read(p, timestamps=True, tail="1")
    assert out == v.rfc3339(NOW - 5) + " tial\n"
    with pytest.raises(UsageError):
        _read(p, tail="x")


def test_read_an_older_plain_log(tmp_path):
    p = tmp_path / "container.log"
    p.write_bytes(b"plain line\n\xff raw bytes\n")
    out = {"stdout": io.BytesIO(), "stderr": io.BytesIO()}
    logfile.read([p], logfile.ReadOptions(), out)
    assert out["stdout"].getvalue() == b"plain line\n\xff raw bytes\n"


def test_records_keep_any_bytes():
    line = logfile.record(b"caf\xc3\xa9 \xff\x01\"\\\n", "stderr")
    e = logfile.parse_line(line.rstrip(b"\n"))
    assert e.stream == "stderr" and e.text == b"caf\xc3\xa9 \xff\x01\"\\\n"
    assert abs(e.t - time.time()) < 60


def test_python_relay(tmp_path):
    """The relay of the Python monitor (no C compiler): lines with their streams, a last
    line without newline, the child's exit status."""
    import os
    log = os.open(tmp_path / "l", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(out_w, b"a\nb")
        os.write(err_w, b"E\n")
        os.write(out_w, b"c\n" + b"x" * 20000)
        os._exit(3)
    for fd in (out_w, err_w):
        os.close(fd)
    status = logfile.relay(pid, {"stdout": out_r, "stderr": err_r}, log)
    os.close(log)
    assert os.waitstatus_to_exitcode(status) == 3
    entries = [logfile.parse_line(x) for x in (tmp_path / "l").read_bytes().splitlines()]
    out = b"".join(e.text for e in entries if e.stream == "stdout")
    assert out == b"a\nbc\n" + b"x" * 20000
    assert [e.text for e in entries if e.stream == "stderr"] == [b"E\n"]
    assert max(len(e.text) for e in entries) <= logfile.CHUNK
