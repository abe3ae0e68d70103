"""The less common options of `minirun run`, parsed and checked (pure, except reading the
files the user named and the container's /etc/passwd and /etc/group).

commands.run_command imports this module only when one of these options is given, so a
plain `run` pays nothing for it: --tmpfs, --mount, --label/--label-file, --cidfile,
--stop-signal/--stop-timeout, -u NAME[:GROUP], -P. The syntax and the messages are
Docker's where Docker has one.
"""
from __future__ import annotations

import os
import re
import signal as _signal
from .tuples import NamedTuple

from .errors import MinirunError, UsageError
from .spec import VOLUME_NAME_RE, Tmpfs, Volume


# mount(8) flags a tmpfs takes by name, and the data options the tmpfs itself takes
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync",
                "async", "atime", "noatime", "diratime", "nodiratime", "relatime",
                "norelatime", "strictatime", "nostrictatime"}
_TMPFS_DATA = {"size", "mode", "nr_inodes", "nr_blocks", "uid", "gid", "huge", "mpol"}
TMPFS_DEFAULT = ("noexec", "nosuid", "nodev")  # what Docker gives a --tmpfs


def _tmpfs_options(opts: list[str], what: str) -> tuple[str, ...]:
    for o in opts:
        key = o.split("=", 1)[0]
        if (key not in _TMPFS_DATA or "=" not in o) and o not in _TMPFS_FLAGS:
            raise UsageError(f"invalid tmpfs option {o!r} in {what}")
        if "," in o or "\0" in o:
            raise UsageError(f"invalid tmpfs option {o!r} in {what}")
    return tuple(opts)


def _target(path: str, kind: str) -> str:
    if not path.startswith("/"):
        raise UsageError(f"invalid mount config for type \"{kind}\": invalid mount path: "
                         f"'{path}' mount path must be absolute")
    if "\0" in path:
        raise UsageError("invalid mount path: contains a NUL byte")
    if os.path.normpath(path) == "/":
        raise UsageError(f"invalid mount config for type \"{kind}\": invalid specification: "
                         "destination can't be '/'")
    return os.path.normpath(path)


def parse_tmpfs(value: str) -> Tmpfs:
    """--tmpfs PATH[:OPTIONS] (OPTIONS: mount(8)'s, comma-separated)."""
    path, _, opts = value.partition(":")
    target = _target(path, "tmpfs")
    given = [o for o in opts.split(",") if o] if opts else []
    return Tmpfs(target, TMPFS_DEFAULT + _tmpfs_options(given, f"--tmpfs {value!r}"))


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
               "tmpfs-size", "tmpfs-mode", "bind-propagation", "volume-nocopy",
               "consistency"}
_BOOL = {"": True, "1": True, "true": True, "0": False, "false": False}


def parse_mount(value: str) -> tuple[str, dict]:
    """--mount type=bind|volume|tmpfs,source=,target=,readonly,tmpfs-size=,tmpfs-mode=
    -> (type, fields). Docker's messages: `invalid argument "..." for "--mount" flag:
    ...`."""
    def bad(why: str) -> UsageError:
        return UsageError(f'invalid argument "{value}" for "--mount" flag: {why}')

    fields: dict = {}
    for field in value.split(","):
        key, eq, val = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy"):
            raise bad(f"invalid field '{field}' must be a key=value pair")
        if key not in _MOUNT_KEYS:
            raise bad(f"unexpected key '{key}' in '{field}'")
        if key in ("readonly", "ro", "volume-nocopy"):
            if val.lower() not in _BOOL:
                raise bad(f"invalid value for {key}: {val}")
            fields[key if key != "ro" else "readonly"] = _BOOL[val.lower()]
            continue
        key = {"src": "source", "destination": "target", "dst": "target"}.get(key, key)
        fields[key] = val
    kind = fields.get("type", "volume")  # Docker's default type
    if kind not in ("bind", "volume", "tmpfs"):
        raise bad(f"invalid type '{kind}' (minirun takes bind, volume and tmpfs)")
    if not fields.get("target"):
        raise bad("target is required")
    if kind != "bind" and "bind-propagation" in fields:
        raise bad(f"cannot mix 'bind-*' options with mount type '{kind}'")
    if kind != "tmpfs" and ("tmpfs-size" in fields or "tmpfs-mode" in fields):
        raise bad(f"cannot mix 'tmpfs-*' options with mount type '{kind}'")
    if fields.get("bind-propagation", "rprivate") not in ("rprivate", "private"):
        raise bad("only private bind propagation is supported")
    return kind, fields


def mount_to(kind: str, fields: dict) -> Volume | Tmpfs:
    """A parsed --mount as what the container gets: a bind (Volume) or a Tmpfs. A
    volume's source stays a name: commands.run_command resolves it in the volume store."""
    target = _target(fields["target"], kind)
    ro = bool(fields.get("readonly"))
    src = fields.get("source", "")
    if kind == "tmpfs":
        if src:
            raise UsageError('invalid mount config for type "tmpfs": field Source must not '
                             "be specified")
        opts = ["ro"] if ro else []
        if "tmpfs-size" in fields:
            from .spec import parse_bytes
            opts.append(f"size={parse_bytes(fields['tmpfs-size'], 'tmpfs-size')}")
        if "tmpfs-mode" in fields:
            if not re.fullmatch(r"[0-7]{1,4}", fields["tmpfs-mode"]):
                raise UsageError(f"invalid tmpfs-mode {fields['tmpfs-mode']!r}: an octal mode")
            opts.append(f"mode={fields['tmpfs-mode']}")
        return Tmpfs(target, ("nosuid", "nodev") + tuple(opts))
    if kind == "bind":
        if not src:
            raise UsageError('invalid mount config for type "bind": field Source must not '
                             "be empty")
        if not os.path.isabs(src):
            raise UsageError(f'invalid mount config for type "bind": invalid mount path: '
                             f"'{src}' mount path must be absolute")
        if not os.path.exists(src):
            raise UsageError(f'invalid mount config for type "bind": bind source path does '
                             f"not exist: {src}")
        return Volume(os.path.realpath(src), target, ro)
    if src and not VOLUME_NAME_RE.match(src):  # volume
        raise UsageError(f"invalid volume name {src!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                         "are allowed")
    if not src:
        raise UsageError("anonymous volumes are not supported: give source=NAME")
    return Volume(src, target, ro, name=src)


def parse_labels(items, files) -> dict[str, str]:
    """--label KEY=VALUE (KEY alone: an empty value, as Docker) and --label-file: one
    label a line, blank lines and lines starting with # skipped."""
    lines: list[tuple[str, str]] = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise UsageError(f"cannot read label file {f!r}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"cannot read label file {f!r}: not UTF-8 text") from None
        for n, raw in enumerate(text.lstrip("\ufeff").split("\n"), 1):
            line = raw.lstrip()
            if line and not line.startswith("#"):
                lines.append((line, f" in {f} line {n}"))
    lines += [(i, "") for i in items]
    labels = {}
    for line, where in lines:
        key, _, val = line.partition("=")
        if not key or "\0" in line:
            raise UsageError(f"invalid label {line!r}{where}: expected KEY=VALUE")
        labels[key] = val
    return labels


def parse_signal(sig: str) -> int:
    """A signal as Docker takes it: a number from 1 to SIGRTMAX, or a name with or
    without SIG, in any case (KILL, SIGKILL, kill; RTMIN+N and RTMAX-N too)."""
    top = int(_signal.SIGRTMAX)
    s = sig.upper()
    if s.isascii() and s.isdigit():
        num = int(s)
    else:
        s = s[3:] if s.startswith("SIG") else s
        rt = re.fullmatch(r"RTMIN(?:\+(\d{1,3}))?|RTMAX(?:-(\d{1,3}))?", s)
        if rt:
            num = (int(_signal.SIGRTMIN) + int(rt.group(1) or 0) if s.startswith("RTMIN")
                   else top - int(rt.group(2) or 0))
            num = num if num >= int(_signal.SIGRTMIN) else 0  # RTMAX-40 is no RT signal
        elif "SIG" + s in _signal.Signals.__members__:
            num = int(_signal.Signals["SIG" + s])
        else:
            num = 0
    if not 1 <= num <= top:
        raise UsageError(f"invalid signal {sig!r}: a name such as TERM or KILL, or a number "
                         f"from 1 to {top}")
    return num


def parse_stop_timeout(value: str) -> int:
    """Seconds; -1 waits for ever (Docker's meaning)."""
    if not re.fullmatch(r"-?\d{1,9}", value.strip()) or int(value) < -1:
        raise UsageError(f"invalid --stop-timeout {value!r}: a number of seconds (-1: no "
                         "limit)")
    return int(value)


def check_cidfile(path: str) -> str:
    """Docker refuses a --cidfile that exists (another container may be writing it)."""
    if os.path.lexists(path):
        raise UsageError(f"container ID file found, make sure the other container isn't "
                         f"running or delete {path}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write --cidfile {path!r}: {parent} is not a directory")
    return os.path.abspath(path)


# -- -u NAME[:GROUP] --------------------------------------------------------------

class User(NamedTuple):
    uid: int
    gid: int
    groups: tuple[int, ...] = ()   # supplementary
    home: str | None = None


def _read_in_root(layers, rel: str) -> str | None:
    """The text of `rel` (e.g. etc/passwd) in the first of `layers` (top first) that has
    it, opened with openat2(RESOLVE_IN_ROOT): a symlink in the image resolves inside
    that layer, never to the host's file. A whiteout (the file deleted in that layer)
    or anything but a regular file ends the search: the container has no such file."""
    import stat
    from . import kernel as k
    for layer in layers:
        try:
            dfd = os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fd = k.kernel.openat2(dfd, rel, os.O_PATH | os.O_CLOEXEC,
                                  k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS)
        except MinirunError:
            continue  # not in this layer
        finally:
            os.close(dfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with open(f"/proc/self/fd/{fd}", "rb") as f:  # the very file checked
                return f.read(1 << 22).decode("utf-8", "replace")
        finally:
            os.close(fd)
    return None


def _entries(text: str | None, nfields: int):
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) >= nfields and parts[0] and not line.startswith("#"):
            yield parts


def resolve_user(user: str, layers) -> User:
    """-u as Docker (runc) resolves it in the container's own files: NAME or UID, then
    GROUP or GID. A UID with no passwd entry gets GID 0; a user without an explicit
    group gets the groups that list it as a member (supplementary)."""
    name, _, group = user.partition(":")
    if not name or "\0" in user or (":" in user and not group):
        raise UsageError(f"invalid user {user!r}: expected NAME|UID[:GROUP|GID]")
    passwd = _read_in_root(layers, "etc/passwd")
    entry = None
    for p in _entries(passwd, 7):
        if (p[0] == name or (name.isdigit() and p[2] == name)) and p[2].isdigit() \
                and p[3].isdigit():
            entry = p
            break
    if entry is None and not name.isdigit():
        raise MinirunError(f"unable to find user {name}: no matching entries in passwd file")
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else None
    groups: list[int] = []
    group_text = _read_in_root(layers, "etc/group") if (group and not group.isdigit()) \
        or entry else None
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = [g for g in _entries(group_text, 4) if g[0] == group and g[2].isdigit()]
            if not found:
                raise MinirunError(f"unable to find group {group}: no matching entries in "
                                   "group file")
            gid = int(found[0][2])
    elif entry:
        groups = sorted({int(g[2]) for g in _entries(group_text, 4)
                         if g[2].isdigit() and entry[0] in g[3].split(",")} - {gid})
    if uid > 2**32 - 2 or gid > 2**32 - 2:
        raise UsageError(f"invalid user {user!r}: out of range")
    return User(uid, gid, tuple(groups), home)


def publish_all(exposed, published) -> list[str]:
    """-P: every exposed port ("80/tcp") not already published by -p, as `-p` specs that
    leave the host port to be picked."""
    taken = {(m.container_port, m.proto) for m in published}
    out = []
    for e in exposed:
        port, _, proto = e.partition("/")
        proto = proto or "tcp"
        if port.isdigit() and proto in ("tcp", "udp") and (int(port), proto) not in taken:
            out.append(f"{port}/{proto}")
    return out


def after_record(paths, c, spec) -> None:
    """Once the record exists (so `volume rm`, which checks users under the volumes'
    lock, either saw this container or finished first): make the named volumes that are
    missing, then write the --cidfile (refused if it appeared meanwhile, as Docker's
    O_EXCL create)."""
    if any(v.name for v in spec.volumes):
        from .volumes import VolumeStore
        store = VolumeStore(paths)
        for v in spec.volumes:
            if v.name:
                store.create(v.name)  # made on first use, as Docker (a no-op if it exists)
    if spec.cidfile:
        try:
            fd = os.open(spec.cidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         0o644)
        except FileExistsError:
            raise UsageError(f"container ID file found, make sure the other container "
                             f"isn't running or delete {spec.cidfile}") from None
        except OSError as e:
            raise MinirunError(f"cannot write --cidfile {spec.cidfile}: {e.strerror}") \
                from None
        with os.fdopen(fd, "w") as f:
            f.write(c.id)


def drop_cidfile(path: str, cid: str) -> None:
    """The start failed: remove the --cidfile if it is the one we wrote (Docker does)."""
    try:
        with open(path) as f:
            if f.read() != cid:
                return
        os.unlink(path)
    except OSError:
        pass


def apply_options(paths, o: dict, spec, ports: list, user: str | None):
    """The spec and the port list with the options of this module applied (validated
    before anything is created; named volumes are made here, as Docker does on run)."""
    volumes, tmpfs = list(spec.volumes), [parse_tmpfs(t) for t in o.get("tmpfs") or ()]
    for m in o.get("mount") or ():
        got = mount_to(*parse_mount(m))
        (tmpfs if isinstance(got, Tmpfs) else volumes).append(got)
    seen: set[str] = set()
    for target in [v.target for v in volumes] + [t.target for t in tmpfs]:
        if target in seen:
            raise UsageError(f"duplicate mount point: {target}")
        seen.add(target)
    changes: dict = {"tmpfs": tuple(tmpfs)}
    if o.get("label") or o.get("label_file"):
        changes["labels"] = {**spec.labels, **parse_labels(tuple(o.get("label") or ()),
                                                           tuple(o.get("label_file") or ()))}
    if o.get("stop_signal") is not None:
        changes["stop_signal"] = parse_signal(o["stop_signal"])
    if o.get("stop_timeout") is not None:
        changes["stop_timeout"] = parse_stop_timeout(o["stop_timeout"])
    if o.get("cidfile"):
        changes["cidfile"] = check_cidfile(o["cidfile"])
    if user is not None:
        u = resolve_user(user, spec.lowers or (spec.rootfs,))
        changes.update(user=(u.uid, u.gid), groups=u.groups, home=u.home)
    if o.get("publish_all"):
        from .network.ports import parse_all
        ports = parse_all(list(o.get("publish") or ()) + publish_all(spec.exposed_ports,
                                                                      ports))
    if any(v.name for v in volumes):
        from .volumes import resolve
        volumes = list(resolve(paths, volumes))
    changes["volumes"] = tuple(volumes)
    return spec._replace(**changes), ports
