"""Unit tests of the parsing of run's less common options (runextras.py), -p 0 and host
ranges, env files (Docker's rules), tmpfs mount steps and shell completion (no root)."""
from __future__ import annotations

import os
import signal

import pytest

from minirun import rootfs as rfs
from minirun import runextras as rx
from minirun.errors import MinirunError, UsageError
from minirun.network.ports import PortMapping, parse_all
from minirun.spec import Tmpfs, Volume, parse_env


@pytest.mark.parametrize("value, expected", [
    ("/run", Tmpfs("/run", rx.TMPFS_DEFAULT)),
    ("/run:size=64m,mode=1777", Tmpfs("/run", rx.TMPFS_DEFAULT + ("size=64m", "mode=1777"))),
    ("/x/../y:exec,ro", Tmpfs("/y", rx.TMPFS_DEFAULT + ("exec", "ro"))),
])
def test_tmpfs(value, expected):
    assert rx.parse_tmpfs(value) == expected


@pytest.mark.parametrize("value, msg", [
    ("run", "must be absolute"), ("/", "destination can't be '/'"),
    ("/x:bogus", "invalid tmpfs option 'bogus'"), ("/x:size", "invalid tmpfs option"),
])
def test_tmpfs_refused(value, msg):
    with pytest.raises(UsageError, match=msg):
        rx.parse_tmpfs(value)


def test_tmpfs_step_later_options_win():
    step = rfs.tmpfs_step("/t", rx.TMPFS_DEFAULT + ("exec", "size=1m"))
    assert step.flags == rfs.k.MS_NOSUID | rfs.k.MS_NODEV and step.data == "size=1m"
    assert step.kind == "tmpfs" and step.fstype == "tmpfs"
    ro = rfs.tmpfs_step("/r", ("ro",))
    assert ro.flags & rfs.k.MS_RDONLY and ro.data is None


def test_mount(tmp_path):
    assert rx.mount_to(*rx.parse_mount(f"type=bind,src={tmp_path},dst=/h,ro")) == \
        Volume(str(tmp_path), "/h", True)
    assert rx.mount_to(*rx.parse_mount("source=data,target=/d")) == \
        Volume("data", "/d", False, name="data")
    t = rx.mount_to(*rx.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700"))
    assert t == Tmpfs("/t", ("nosuid", "nodev", f"size={1 << 20}", "mode=700"))
    assert rx.parse_mount("type=bind,source=/a,target=/b,readonly=false")[1]["readonly"] \
        is False


@pytest.mark.parametrize("value, msg", [
    ("type=bind,source=/tmp", 'for "--mount" flag: target is required'),
    ("type=bind,foo=1,target=/x", "unexpected key 'foo' in 'foo=1'"),
    ("type=bind,x,target=/x", "invalid field 'x' must be a key=value pair"),
    ("type=npipe,target=/x", "invalid type 'npipe'"),
    ("type=volume,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-\\*' options"),
    ("type=bind,source=/tmp,target=/x,readonly=maybe", "invalid value for readonly"),
])
def test_mount_syntax_refused(value, msg):
    with pytest.raises(UsageError, match=msg):
        rx.mount_to(*rx.parse_mount(value))


@pytest.mark.parametrize("value, msg", [
    ("type=bind,target=/x", "field Source must not be empty"),
    ("type=bind,source=rel,target=/x", "'rel' mount path must be absolute"),
    ("type=bind,source=/nonexistent-q,target=/x", "bind source path does not exist"),
    ("type=tmpfs,source=/tmp,target=/x", "field Source must not be specified"),
    ("type=volume,target=/x", "anonymous volumes are not supported"),
    ("type=volume,source=a/b,target=/x", "invalid volume name"),
    ("type=tmpfs,target=/x,tmpfs-mode=999", "invalid tmpfs-mode"),
])
def test_mount_config_refused(value, msg):
    with pytest.raises(UsageError, match=msg):
        rx.mount_to(*rx.parse_mount(value))


def test_named_volume_in_v():
    assert Volume.parse("data:/d:ro") == Volume("data", "/d", True, name="data")
    with pytest.raises(UsageError, match="absolute"):
        Volume.parse("data:rel")


def test_labels(tmp_path):
    f = tmp_path / "l"
    f.write_text("\ufeff# c\n\n  a=1\nb\nc=x=y\n")
    assert rx.parse_labels(("b=flag", "d"), (str(f),)) == \
        {"a": "1", "b": "flag", "c": "x=y", "d": ""}
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        rx.parse_labels(("=v",), ())
    with pytest.raises(UsageError, match="cannot read label file"):
        rx.parse_labels((), (str(tmp_path / "missing"),))


def test_signals_and_timeout():
    assert rx.parse_signal("usr1") == signal.SIGUSR1
    assert rx.parse_signal("SIGRTMIN+2") == signal.SIGRTMIN + 2
    assert rx.parse_signal("9") == 9
    for bad in ("NOPE", "0", "RTMAX-40"):
        with pytest.raises(UsageError):
            rx.parse_signal(bad)
    assert rx.parse_stop_timeout("-1") == -1 and rx.parse_stop_timeout("30") == 30
    for bad in ("-2", "x", "1.5"):
        with pytest.raises(UsageError):
            rx.parse_stop_timeout(bad)


def test_cidfile(tmp_path):
    (tmp_path / "cid").write_text("x")
    with pytest.raises(UsageError, match="container ID file found"):
        rx.check_cidfile(str(tmp_path / "cid"))
    with pytest.raises(UsageError, match="not a directory"):
        rx.check_cidfile(str(tmp_path / "nodir" / "cid"))
    assert rx.check_cidfile(str(tmp_path / "new")) == str(tmp_path / "new")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
        "# comment\nbroken:line\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:alice,bob\nusers:x:100:bob\n")
    return str(tmp_path)


def test_resolve_user(root):
    assert rx.resolve_user("alice", [root]) == rx.User(1000, 1000, (50,), "/home/alice")
    assert rx.resolve_user("1000", [root]) == rx.User(1000, 1000, (50,), "/home/alice")
    assert rx.resolve_user("alice:users", [root]) == rx.User(1000, 100, (), "/home/alice")
    assert rx.resolve_user("alice:7", [root]).gid == 7
    assert rx.resolve_user("555", [root]) == rx.User(555, 0, (), None)  # Docker: GID 0
    assert rx.resolve_user("555:9", [root]) == rx.User(555, 9, (), None)
    with pytest.raises(MinirunError, match="unable to find user bob"):
        rx.resolve_user("bob", [root])
    with pytest.raises(MinirunError, match="unable to find group nope"):
        rx.resolve_user("alice:nope", [root])
    for bad in ("", ":1", "a:"):
        with pytest.raises(UsageError):
            rx.resolve_user(bad, [root])


def test_resolve_user_layers_top_first(root, tmp_path_factory):
    top = tmp_path_factory.mktemp("top")
    (top / "etc").mkdir()
    (top / "etc/passwd").write_text("alice:x:2000:2000::/:/bin/sh\n")
    assert rx.resolve_user("alice", [str(top), root]).uid == 2000
    # /etc/group from the lower layer (the top one has none)
    assert rx.resolve_user("alice", [str(top), root]).groups == (50,)


def test_resolve_user_symlink_stays_inside(root):
    os.unlink(os.path.join(root, "etc/passwd"))
    os.symlink("../../../../../../../../etc/passwd", os.path.join(root, "etc/passwd"))
    with pytest.raises(MinirunError, match="unable to find user daemon"):
        rx.resolve_user("daemon", [root])


def test_publish_zero_and_ranges():
    M = PortMapping
    assert parse_all(["0:80"]) == [M(None, None, 80, "tcp")]
    assert parse_all(["8000-8010:80/udp"]) == [M(None, None, 80, "udp", (8000, 8010))]
    assert parse_all(["127.0.0.1:8000-8001:80"]) == [M("127.0.0.1", None, 80, "tcp",
                                                       (8000, 8001))]
    for bad in ("0-5:80", "0:80-81x", "0"):
        with pytest.raises(UsageError):
            parse_all([bad])
    assert rx.publish_all(("80/tcp", "53/udp", "x/tcp", "81"),
                          parse_all(["8080:80"])) == ["53/udp", "81/tcp"]


def test_env_file_docker_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("ON_HOST", "h")
    monkeypatch.delenv("NOT_ON_HOST", raising=False)
    f = tmp_path / "env"
    f.write_text("# c\n\n   A=1\nB='q'  \nON_HOST\nNOT_ON_HOST\n  ON_HOST  \nC=\n")
    assert parse_env(("D",), (str(f),)) == {"A": "1", "B": "'q'  ", "ON_HOST": "h",
                                            "C": ""}
    f.write_text("export A=1\n")
    with pytest.raises(UsageError, match="whitespace"):
        parse_env((), (str(f),))


def test_completion_names(tmp_path, monkeypatch):
    import click
    from minirun import completion
    from minirun.cli import main
    monkeypatch.setenv("MINIRUN_ROOT", str(tmp_path))
    from minirun.state import Paths
    from minirun.volumes import VolumeStore
    VolumeStore(Paths.from_env()).create("vol-a") if os.geteuid() == 0 else None
    ctx = click.Context(main)
    ctx.params = {"root": str(tmp_path), "runroot": str(tmp_path / "run")}
    vol = main.commands["volume"].commands["rm"].params[-1]
    names = [c.value for c in vol.shell_complete(ctx, "vol")]
    assert names == (["vol-a"] if os.geteuid() == 0 else [])
    net = [p for p in main.commands["run"].params if "--network" in p.opts][0]
    assert [c.value for c in net.shell_complete(ctx, "br")] == ["bridge"]
    assert "complete -o" in completion.script("bash")


def test_old_records_load_and_new_fields_round_trip():
    from minirun.record import Config, Port
    old = {"rootfs": "/r", "command": ["true"], "hostname": "h", "env": {},
           "volumes": [{"source": "/a", "target": "/b", "readonly": False}],
           "ports": [{"host_ip": None, "host_port": 1, "container_port": 2, "proto": "tcp"}]}
    c = Config.from_json(old)
    assert c.tmpfs == () and c.groups == () and c.stop_signal is None
    assert c.stop_timeout is None and c.cidfile is None and c.volumes[0].name is None
    new = c._replace(tmpfs=(Tmpfs("/t", ("size=1m",)),), groups=(5, 6), stop_signal=10,
                     stop_timeout=3, cidfile="/c",
                     volumes=(Volume("/v/_data", "/d", True, "v"),),
                     ports=(Port(None, None, 80, "tcp", (8000, 8001)),))
    back = Config.from_json(new.to_json())
    assert back.tmpfs == new.tmpfs and back.groups == (5, 6) and back.volumes == new.volumes
    assert (back.stop_signal, back.stop_timeout, back.cidfile) == (10, 3, "/c")
    assert tuple(back.ports[0].host_range) == (8000, 8001)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a whiteout needs root")
def test_resolve_user_whiteout_hides_lower_layers(root, tmp_path_factory):
    import stat
    top = tmp_path_factory.mktemp("top")
    (top / "etc").mkdir()
    os.mknod(top / "etc/passwd", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # deleted above
    with pytest.raises(MinirunError, match="unable to find user alice"):
        rx.resolve_user("alice", [str(top), root])
