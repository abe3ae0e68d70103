"""The subset of Go's text/template that people pass to `docker ... --format`.

Pure: no I/O, no minirun imports. `parse(text)` returns a Template whose
`render(data)` gives a string; both raise TemplateError with a one-line
message shaped like Go's ("template: :1: function "foo" not defined").

Supported: text and actions with `{{-`/`-}}` trimming and `{{/* comments */}}`;
`.`, field chains (`.State.Pid`, `$v.IPAddress`, `(index .A 0).B`), `$` and
variables (`$x := ...`, `$x = ...`); pipelines (`.Name | upper`); string
(quoted and raw), number, bool and nil literals; `if`/`else if`/`else`,
`range` (lists and maps, sorted keys, with `$i, $v :=`, `else`, `break`,
`continue`), `with`/`else`; Go's builtins and, or, not, len, index, print,
printf, println, eq, ne, lt, le, gt, ge, slice; Docker's json, join, split,
lower, upper, title, pad, truncate. Not supported: define/template/block.

Data is JSON-shaped Python (dict, list, str, int, float, bool, None). A dict
may carry `methods` (a mapping name -> callable) for Docker's
`{{.Label "key"}}`-style calls. A missing map key is an error, as Docker's
inspect makes it (missingkey=error).
"""
from __future__ import annotations

import json
import re

__all__ = ["TemplateError", "Template", "parse", "render", "go_str"]


class TemplateError(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# -- lexing -----------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<op>[|(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)
_FIELD_TAIL = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unquote(s: str) -> str:
    def esc(m):
        c = m.group(1)
        if c[0] in "xuU":
            return chr(int(c[1:], 16))
        return _ESCAPES.get(c, c)
    return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", esc, s[1:-1])


def _tokens(src: str, line: int) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise TemplateError(f"template: :{line}: unexpected {src[pos]!r} in command")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        text = m.group()
        out.append((kind, text))
        if kind == "var" or (kind, text) == ("op", ")"):
            # `$x.Field`, `(...).Field`: a field chain glued to the operand
            t = _FIELD_TAIL.match(src, pos)
            if t:
                out.append(("chain", t.group()))
                pos = t.end()
    return out


# -- parsing ---------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str):
        self.text = text

    def parse(self) -> list:
        pieces = self._pieces()
        self.pieces, self.i = pieces, 0
        body, end = self._list(())
        if end is not None:
            raise TemplateError(f"template: :{end[1]}: unexpected {{{{{end[0]}}}}}")
        return body

    def _pieces(self):
        """Text and action pieces, with trim markers applied."""
        out, pos = [], 0
        text = self.text
        for m in _ACTION.finditer(text):
            lit = text[pos:m.start()]
            if m.group(1):
                lit = lit.rstrip(" \t\r\n")
            if out and out[-1][0] == "trim":
                out.pop()
                lit = lit.lstrip(" \t\r\n")
            if lit:
                out.append(("text", lit))
            body = m.group(2)
            line = text.count("\n", 0, m.start()) + 1
            stripped = body.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise TemplateError(f"template: :{line}: unclosed comment")
            else:
                out.append(("action", body, line))
            if m.group(3):
                out.append(("trim",))
            pos = m.end()
        rest = text[pos:]
        if "{{" in rest:
            line = text.count("\n", 0, pos + rest.index("{{")) + 1
            raise TemplateError(f"template: :{line}: unclosed action")
        if out and out[-1][0] == "trim":
            out.pop()
            rest = rest.lstrip(" \t\r\n")
        if rest:
            out.append(("text", rest))
        return out

    def _list(self, stops):
        """Nodes up to one of the keywords in `stops`; returns (nodes, (keyword, line,
        tokens)) or (nodes, None) at the end of the text."""
        nodes = []
        while self.i < len(self.pieces):
            p = self.pieces[self.i]
            self.i += 1
            if p[0] == "text":
                nodes.append(("text", p[1]))
                continue
            _, body, line = p
            toks = _tokens(body, line)
            if not toks:
                raise TemplateError(f"template: :{line}: missing value for command")
            kw = toks[0][1] if toks[0][0] == "ident" else None
            if kw in ("end", "else"):
                if kw not in stops:
                    raise TemplateError(f"template: :{line}: unexpected {{{{{kw}}}}}")
                return nodes, (kw, line, toks[1:])
            if kw in ("if", "with", "range"):
                nodes.append(self._block(kw, toks[1:], line))
            elif kw in ("break", "continue"):
                nodes.append((kw, line))
            elif kw in ("define", "template", "block"):
                raise TemplateError(f"template: :{line}: {kw} is not supported by minirun")
            else:
                nodes.append(("action", self._pipeline(toks, line, decl_ok=True), line))
        if stops:
            raise TemplateError(f"template: :{self._line()}: unexpected EOF")
        return nodes, None

    def _line(self):
        return self.text.count("\n") + 1

    def _block(self, kw, toks, line):
        if not toks:
            raise TemplateError(f"template: :{line}: missing value for {kw}")
        pipe = self._pipeline(toks, line, decl_ok=True, range_=kw == "range")
        body, end = self._list(("end", "else"))
        other = []
        if end[0] == "else":
            rest = end[2]
            if rest and rest[0] == ("ident", "if") and kw == "if":  # else if: a nested if
                other = [self._block("if", rest[1:], end[1])]
                return (kw, pipe, body, other, line)
            if rest:
                raise TemplateError(f"template: :{end[1]}: unexpected {rest[0][1]!r} in else")
            other, end = self._list(("end",))
        elif end[2]:
            raise TemplateError(f"template: :{end[1]}: unexpected {end[2][0][1]!r} in end")
        return (kw, pipe, body, other, line)

    def _pipeline(self, toks, line, decl_ok=False, range_=False):
        decl, assign = [], False
        # `$x :=`, `$i, $v :=` (range), `$x =`
        j = 0
        while j + 1 < len(toks) and toks[j][0] == "var":
            if toks[j + 1][0] in ("decl", "assign"):
                decl.append(toks[j][1])
                assign = toks[j + 1][0] == "assign"
                j += 2
                break
            if range_ and toks[j + 1] == ("op", ",") and j == 0:
                decl.append(toks[j][1])
                j += 2
                continue
            break
        else:
            if decl:
                raise TemplateError(f"template: :{line}: expected := after variables")
        if decl and not decl_ok:
            raise TemplateError(f"template: :{line}: unexpected declaration")
        if decl and len(decl) > (2 if range_ else 1):
            raise TemplateError(f"template: :{line}: too many declarations")
        if decl and j == 2 and len(decl) == 2:
            raise TemplateError(f"template: :{line}: expected := after variables")
        cmds, k = self._commands(toks, j, line)
        if k != len(toks):
            raise TemplateError(f"template: :{line}: unexpected {toks[k][1]!r} in command")
        return ("pipe", decl, assign, cmds)

    def _commands(self, toks, j, line, in_paren=False):
        cmds, cur = [], []
        while j < len(toks):
            kind, text = toks[j]
            if (kind, text) == ("op", ")"):
                if not in_paren:
                    raise TemplateError(f"template: :{line}: unexpected right paren")
                break
            if (kind, text) == ("op", "|"):
                if not cur:
                    raise TemplateError(f"template: :{line}: missing command")
                cmds.append(cur)
                cur = []
                j += 1
                continue
            op, j = self._operand(toks, j, line)
            cur.append(op)
        if not cur:
            raise TemplateError(f"template: :{line}: missing value for command")
        cmds.append(cur)
        for c in cmds[1:]:
            if c[0][0] in ("lit",):
                raise TemplateError(f"template: :{line}: non executable command in pipeline "
                                    "stage 2")
        return cmds, j

    def _operand(self, toks, j, line):
        kind, text = toks[j]
        j += 1
        if kind == "op" and text == "(":
            cmds, j = self._commands(toks, j, line, in_paren=True)
            if j >= len(toks) or toks[j] != ("op", ")"):
                raise TemplateError(f"template: :{line}: unclosed left paren")
            j += 1
            node = ("paren", ("pipe", [], False, cmds))
        elif kind == "field":
            node = ("field", None, [] if text == "." else text[1:].split("."))
        elif kind == "var":
            node = ("var", text)
        elif kind == "str":
            node = ("lit", _unquote(text))
        elif kind == "raw":
            node = ("lit", text[1:-1])
        elif kind == "char":
            node = ("lit", ord(_unquote(text)))
        elif kind == "num":
            node = ("lit", _number(text))
        elif kind == "ident":
            if text in ("true", "false"):
                node = ("lit", text == "true")
            elif text == "nil":
                node = ("nil",)
            elif text in FUNCS:
                node = ("func", text)
            else:
                raise TemplateError(f'template: :{line}: function "{text}" not defined')
        else:
            raise TemplateError(f"template: :{line}: unexpected {text!r} in operand")
        if j < len(toks) and toks[j][0] == "chain":
            node = ("field", node, toks[j][1][1:].split("."))
            j += 1
        return node, j


def _number(text: str):
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


# -- values as Go prints them -------------------------------------------------------

def go_str(v) -> str:
    """A value as fmt.Sprint prints it (what `{{.X}}` writes)."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_inner(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{_inner(k)}:{_inner(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _inner(v) -> str:
    return "<nil>" if v is None else go_str(v)


def _go_float(f: float) -> str:
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    s = repr(f)
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}e{exp[0] if exp[0] in '+-' else '+'}{exp.lstrip('+-').zfill(2)}"
    return s


def truth(v) -> bool:
    if v is None or v is False:
        return False
    if isinstance(v, (int, float, str, list, tuple, dict)):
        return bool(v)
    return True


# -- functions ----------------------------------------------------------------------

def _index(item, *keys):
    for k in keys:
        if isinstance(item, dict):
            item = item.get(k)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"cannot index slice/array with type {type(k).__name__}")
            if not 0 <= k < len(item):
                raise TemplateError(f"error calling index: index out of range: {k}")
            item = item[k]
        elif item is None:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type "
                                f"{type(item).__name__}")
    return item


def _slice(item, *idx):
    if not isinstance(item, (list, tuple, str)):
        raise TemplateError("error calling slice: can't slice item")
    return item[slice(*idx)] if len(idx) > 1 else item[idx[0]:] if idx else item


def _len(v):
    if isinstance(v, (str, list, tuple, dict)):
        return len(v)
    raise TemplateError(f"error calling len: len of type {type(v).__name__}")


def _sprint(*args) -> str:
    out = []
    for i, a in enumerate(args):
        # Go adds a space between operands when neither is a string
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a) if a is not None else "<nil>")
    return "".join(out)


def _sprintf(fmt, *args) -> str:
    args = list(args)

    def conv(m):
        flags, verb = m.group(1), m.group(2)
        if verb == "%":
            return "%"
        if not args:
            return f"%!{verb}(MISSING)"
        a = args.pop(0)
        if verb == "v" or verb == "s":
            s = go_str(a) if a is not None else "<nil>"
        elif verb == "q":
            s = json.dumps(a if isinstance(a, str) else go_str(a), ensure_ascii=False)
        elif verb == "d":
            s = str(int(a)) if isinstance(a, (int, float)) and not isinstance(a, bool) \
                else f"%!d({go_str(a)})"
        elif verb in "fFeEgG":
            return ("%" + flags + verb) % a
        elif verb in "xX":
            s = format(a, verb) if isinstance(a, int) else a.encode().hex() if isinstance(
                a, str) else go_str(a)
            s = s.upper() if verb == "X" else s
        elif verb == "t":
            s = go_str(a)
        else:
            s = go_str(a)
        return ("%" + flags.replace("+", "").replace("#", "") + "s") % s if flags else s
    out = re.sub(r"%([-+# 0]*\d*(?:\.\d+)?)([a-zA-Z%])", conv, fmt)
    if args:
        out += "%!(EXTRA " + ", ".join(go_str(a) for a in args) + ")"
    return out


def _cmp(a, b):
    if isinstance(a, bool) != isinstance(b, bool) or (
            isinstance(a, str) != isinstance(b, str)) and a is not None and b is not None:
        raise TemplateError("error calling eq: incompatible types for comparison")
    return a, b


def _eq(a, *bs):
    if not bs:
        raise TemplateError("wrong number of args for eq: want at least 2 got 1")
    for b in bs:
        x, y = _cmp(a, b)
        if x == y:
            return True
    return False


def _order(op):
    def f(a, b):
        x, y = _cmp(a, b)
        if x is None or y is None or isinstance(x, (dict, list)):
            raise TemplateError("error calling comparison: invalid type for comparison")
        return op(x, y)
    return f


def _json(v) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _join(items, sep) -> str:
    if not isinstance(items, (list, tuple)):
        raise TemplateError("error calling join: wrong type for value; expected []string")
    return sep.join(go_str(x) for x in items)


def _pad(s, prefix: int, suffix: int) -> str:
    return " " * prefix + go_str(s) + " " * suffix


def _truncate(s, n: int) -> str:
    s = go_str(s)
    return s[:n] if len(s) > n else s


def _title(s) -> str:
    return re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), go_str(s))


FUNCS = {
    "and": None, "or": None,  # short-circuit: evaluated in _call
    "not": lambda v: not truth(v),
    "len": _len, "index": _index, "slice": _slice,
    "print": _sprint, "printf": _sprintf,
    "println": lambda *a: " ".join(go_str(x) if x is not None else "<nil>" for x in a) + "\n",
    "eq": _eq, "ne": lambda a, b: not _eq(a, b),
    "lt": _order(lambda a, b: a < b), "le": _order(lambda a, b: a <= b),
    "gt": _order(lambda a, b: a > b), "ge": _order(lambda a, b: a >= b),
    "json": _json, "join": _join,
    "split": lambda s, sep: go_str(s).split(sep) if sep else list(go_str(s)),
    "lower": lambda s: go_str(s).lower(), "upper": lambda s: go_str(s).upper(),
    "title": _title, "pad": _pad, "truncate": _truncate,
}


# -- execution ----------------------------------------------------------------------

class Template:
    def __init__(self, text: str):
        self.text = text
        self.nodes = _Parser(text).parse()

    def render(self, data) -> str:
        out: list[str] = []
        scope = [{"$": data}]
        try:
            self._run(self.nodes, data, scope, out)
        except (_Break, _Continue):
            raise TemplateError("template: :1: break or continue outside range")
        return "".join(out)

    # nodes
    def _run(self, nodes, dot, scope, out):
        for n in nodes:
            kind = n[0]
            if kind == "text":
                out.append(n[1])
            elif kind == "action":
                v = self._pipe(n[1], dot, scope, n[2])
                if not n[1][1]:  # a declaration prints nothing
                    out.append(go_str(v))
            elif kind == "if":
                self._if(n, dot, scope, out)
            elif kind == "with":
                _, pipe, body, other, line = n
                v = self._pipe(pipe, dot, scope, line, keep_decl=True)
                scope.append({})
                try:
                    if truth(v):
                        self._run(body, v, scope, out)
                    else:
                        self._run(other, dot, scope, out)
                finally:
                    scope.pop()
            elif kind == "range":
                self._range(n, dot, scope, out)
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()

    def _if(self, n, dot, scope, out):
        _, pipe, body, other, line = n
        scope.append({})
        try:
            v = self._pipe(pipe, dot, scope, line)
            self._run(body if truth(v) else other, dot, scope, out)
        finally:
            scope.pop()

    def _range(self, n, dot, scope, out):
        _, pipe, body, other, line = n
        decl = pipe[1]
        v = self._pipe(("pipe", [], False, pipe[3]), dot, scope, line)
        if v is None:
            items = []
        elif isinstance(v, dict):
            items = [(k, v[k]) for k in sorted(v)]
        elif isinstance(v, (list, tuple)):
            items = list(enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool):
            items = [(i, i) for i in range(v)]
        else:
            raise self._err(line, "range can't iterate over " + go_str(v))
        if not items:
            scope.append({})
            try:
                self._run(other, dot, scope, out)
            finally:
                scope.pop()
            return
        for k, elem in items:
            frame = {}
            if len(decl) == 1:
                frame[decl[0]] = elem
            elif len(decl) == 2:
                frame[decl[0]], frame[decl[1]] = k, elem
            scope.append(frame)
            try:
                self._run(body, elem, scope, out)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                scope.pop()

    # pipelines
    def _pipe(self, pipe, dot, scope, line, keep_decl=False):
        _, decl, assign, cmds = pipe
        val, have = None, False
        for cmd in cmds:
            val = self._cmd(cmd, dot, scope, line, val if have else _NONE)
            have = True
        if decl:
            name = decl[0]
            if assign:
                for frame in reversed(scope):
                    if name in frame:
                        frame[name] = val
                        break
                else:
                    raise self._err(line, f"undefined variable: {name}")
            else:
                scope[-1][name] = val
        return val

    def _cmd(self, cmd, dot, scope, line, piped):
        head = cmd[0]
        if head[0] == "func":
            name = head[1]
            if name in ("and", "or"):
                return self._andor(name, cmd[1:], dot, scope, line, piped)
            args = [self._arg(a, dot, scope, line) for a in cmd[1:]]
            if piped is not _NONE:
                args.append(piped)
            try:
                return FUNCS[name](*args)
            except TemplateError as e:
                raise self._err(line, str(e), name)
            except TypeError:
                raise self._err(line, f"wrong number of args for {name}: got {len(args)}",
                                name)
            except (ValueError, KeyError, IndexError, AttributeError) as e:
                raise self._err(line, f"error calling {name}: {e}", name)
        if head[0] == "field" and (len(cmd) > 1 or piped is not _NONE):
            # a method call: {{.Label "x"}}, {{"x" | .Label}}
            fn = self._field(head, dot, scope, line, call=True)
            args = [self._arg(a, dot, scope, line) for a in cmd[1:]]
            if piped is not _NONE:
                args.append(piped)
            if not callable(fn):
                raise self._err(line, f"{_show(head)} is not a method but has arguments")
            return fn(*args)
        if len(cmd) > 1 or piped is not _NONE:
            raise self._err(line, f"can't give argument to non-function {_show(head)}")
        return self._arg(head, dot, scope, line)

    def _andor(self, name, args, dot, scope, line, piped):
        vals = [lambda a=a: self._arg(a, dot, scope, line) for a in args]
        if piped is not _NONE:
            vals.append(lambda: piped)
        if not vals:
            raise self._err(line, f"wrong number of args for {name}: want at least 1 got 0")
        v = None
        for get in vals:
            v = get()
            if truth(v) != (name == "and"):
                return v
        return v

    def _arg(self, node, dot, scope, line):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "nil":
            return None
        if kind == "var":
            return self._var(node[1], scope, line)
        if kind == "field":
            v = self._field(node, dot, scope, line)
            if callable(v):
                v = v()
            return v
        if kind == "paren":
            return self._pipe(node[1], dot, scope, line)
        if kind == "func":
            return self._cmd([node], dot, scope, line, _NONE)
        raise self._err(line, "bad operand")

    def _var(self, name, scope, line):
        for frame in reversed(scope):
            if name in frame:
                return frame[name]
        raise self._err(line, f"undefined variable: {name}")

    def _field(self, node, dot, scope, line, call=False):
        _, base, names = node
        v = dot if base is None else self._arg(base, dot, scope, line)
        for i, name in enumerate(names):
            last = i == len(names) - 1
            if isinstance(v, dict):
                if name in v:
                    v = v[name]
                    continue
                methods = getattr(v, "methods", None) or {}
                if name in methods:
                    fn = methods[name]
                    v = fn if last and call else fn()
                    continue
                raise self._err(line, f'map has no entry for key "{name}"', _show(node))
            if v is None:
                raise self._err(line, f"nil pointer evaluating interface {{}}.{name}",
                                _show(node))
            raise self._err(line, f"can't evaluate field {name} in type "
                            f"{_go_type(v)}", _show(node))
        return v

    def _err(self, line, msg, at=None):
        where = f' at <{at}>' if at else ""
        return TemplateError(f'template: :{line}: executing ""{where}: {msg}')


class _NoneType:
    pass


_NONE = _NoneType()


def _go_type(v) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}",
            tuple: "[]interface {}"}.get(type(v), "interface {}")


def _show(node) -> str:
    kind = node[0]
    if kind == "field":
        base = "" if node[1] is None else _show(node[1])
        return base + "." + ".".join(node[2]) if node[2] else (base or ".")
    if kind == "var":
        return node[1]
    if kind == "func":
        return node[1]
    if kind == "paren":
        return "(...)"
    return go_str(node[1]) if kind == "lit" else kind


def parse(text: str) -> Template:
    return Template(text)


def render(text: str, data) -> str:
    return Template(text).render(data)
