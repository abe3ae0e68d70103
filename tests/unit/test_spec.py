import pytest

from minirun import caps
from minirun.errors import UsageError
from minirun.spec import ContainerSpec, Volume, check_name, parse_env, parse_user


def test_env_nul_byte_refused():
    with pytest.raises(UsageError, match="NUL"):
        parse_env(("A=\0b",))


def test_env_forms(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    assert parse_env(("A=1", "B=", "FROM_HOST", "UNSET_THING")) == {
        "A": "1", "B": "", "FROM_HOST": "yes"}


@pytest.mark.parametrize("name", ["../x", "a;b", "-a", ".a", "a b", "a" * 129, ""])
def test_bad_names(name):
    with pytest.raises(UsageError):
        check_name(name)


def test_good_names():
    for n in ("web", "a.b-c_d", "A1", "x" * 128):
        assert check_name(n) == n


def test_user():
    assert parse_user("1000") == (1000, 1000)
    assert parse_user("1:2") == (1, 2)
    for bad in ("root", "1:", ":1", "-1"):
        with pytest.raises(UsageError):
            parse_user(bad)


def test_volume_parse(tmp_path):
    v = Volume.parse(f"{tmp_path}:/data:ro")
    assert v.readonly and v.target == "/data"
    with pytest.raises(UsageError):
        Volume.parse(f"{tmp_path}:/")
    with pytest.raises(UsageError):
        Volume.parse(f"{tmp_path}:/x:rx")


def test_caps_resolve():
    assert "SYS_ADMIN" not in caps.resolve()
    assert "MKNOD" not in caps.resolve()
    assert caps.resolve(drop=("ALL",)) == []
    assert caps.resolve(add=("cap_sys_admin",), drop=("NET_RAW",)).count("SYS_ADMIN") == 1
    with pytest.raises(UsageError):
        caps.resolve(add=("BOGUS",))


def test_container_env_has_no_host_leaks(monkeypatch):
    monkeypatch.setenv("SECRET", "x")
    env = ContainerSpec(rootfs="/r", command=("sh",), env={"A": "1"}).container_env("h")
    assert set(env) == {"PATH", "HOSTNAME", "HOME", "A"}


@pytest.mark.parametrize("item,why", [("A B=1", "whitespace"), (" A=1", "whitespace"),
                                      ("A\tB", "whitespace"), ("=x", "empty"), ("", "empty"),
                                      ("A\0=1", "NUL")])
def test_env_names_follow_dockers_rules(item, why):
    with pytest.raises(UsageError, match=why):
        parse_env((item,))


def test_env_error_names_the_variable_never_its_value():
    with pytest.raises(UsageError) as e:
        parse_env(("MY KEY=s3cret",))
    assert "'MY KEY'" in str(e.value) and "s3cret" not in str(e.value)


def test_env_file_lines(tmp_path):
    f = tmp_path / "env"
    f.write_text("# comment\n\n  LEAD=1\nB.c-d=x=y\nEMPTY=\r\n")
    assert parse_env((), (str(f),)) == {"LEAD": "1", "B.c-d": "x=y", "EMPTY": ""}


@pytest.mark.parametrize("text,line,why", [
    ("A=1\nexport D=4\n", 2, "whitespace"),   # Docker refuses the shell's `export` too
    ("A=1\n\n# c\n=v\n", 4, "empty"),
    ("X\tY=1\n", 1, "whitespace"),
    ("A=\0\n", 1, "NUL"),
])
def test_env_file_errors_name_the_file_and_line(tmp_path, text, line, why):
    f = tmp_path / "env"
    f.write_text(text)
    with pytest.raises(UsageError, match=why) as e:
        parse_env((), (str(f),))
    assert f"{f} line {line}" in str(e.value) and "\n" not in str(e.value)


def test_env_file_not_utf8(tmp_path):
    f = tmp_path / "env"
    f.write_bytes(b"A=caf\xe9\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        parse_env((), (str(f),))
