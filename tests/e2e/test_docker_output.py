"""Docker-shaped output on real containers: inspect, ps (columns, flags, filters),
--format, network inspect/ls, and logs (streams apart, --tail, -t, --since/--until,
-f, foreground containers)."""
import json
import os
import re
import subprocess
import time

from harness import MINIRUN, ROOTFS

R = str(ROOTFS)


def ok(host, *args) -> str:
    return host.minirun(*args, check=True).stdout


def detach(host, name, *cmd, extra=()):
    return ok(host, "run", "-d", "--name", name, *extra, R, *cmd).strip()


def wait_exit(host, name):
    """Until the container has exited and its monitor has recorded it (`logs -f` returns
    when PID 1 is gone; the record follows)."""
    host.minirun("logs", "-f", name, check=True, timeout=30)
    deadline = time.monotonic() + 30
    while host.inspect(name)["State"]["Status"] != "exited":
        assert time.monotonic() < deadline, f"{name} did not exit"
        time.sleep(0.05)


def test_inspect_shape_several_names_and_format(host):
    web = detach(host, "web", "sleep", "1000", extra=("-p", "8080:80", "--memory", "64m"))
    done = detach(host, "done", "sh", "-c", "exit 3", extra=("--network", "none"))
    try:
        wait_exit(host, "done")
        res = host.minirun("inspect", "web", "ghost", "done")
        # as Docker: the ones found are printed, the missing one named, exit 1
        assert res.returncode == 1 and res.stderr == "minirun: no such container: ghost\n"
        a, b = json.loads(res.stdout)
        assert a["Id"] == web and a["Name"] == "/web" and b["Name"] == "/done"
        assert a["Path"] == "sleep" and a["Args"] == ["1000"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", a["Created"])
        st = a["State"]
        assert st["Status"] == "running" and st["Running"] is True and st["Pid"] > 1
        assert st["FinishedAt"] == "0001-01-01T00:00:00Z" and st["ExitCode"] == 0
        # the host PID of PID 1, as the kernel sees it
        assert os.readlink(f"/proc/{st['Pid']}/exe").endswith("busybox")
        assert a["Minirun"]["HostPid"] == st["Pid"]
        assert b["State"]["Status"] == "exited" and b["State"]["ExitCode"] == 3
        assert b["State"]["Pid"] == 0 and b["State"]["FinishedAt"] != "0001-01-01T00:00:00Z"
        ns = a["NetworkSettings"]
        assert ns["IPAddress"].startswith("10.99.0.") and ns["IPPrefixLen"] == 16
        assert ns["Networks"]["bridge"]["IPAddress"] == ns["IPAddress"]
        assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
        assert a["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "",
                                                                "HostPort": "8080"}]}
        assert a["HostConfig"]["Memory"] == 64 << 20
        assert a["HostConfig"]["NetworkMode"] == "bridge"
        # minirun's own: the host end of the veth is a real link in the host
        veth = a["Minirun"]["HostVeth"]
        assert veth in host.sh("ip -br link")
        # --format, on each object
        out = ok(host, "inspect", "-f", "{{.Name}} {{.State.Pid}} {{.NetworkSettings.IPAddress}}",
                 "web", "done")
        assert out == f"/web {st['Pid']} {ns['IPAddress']}\n/done 0 \n"
        assert json.loads(ok(host, "inspect", "--format", "{{json .Config}}", "web")) == \
            a["Config"]
        out = ok(host, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}"
                 "{{$k}}={{$v.IPAddress}}{{end}}", "web")
        assert out == f"bridge={ns['IPAddress']}\n"
        out = ok(host, "inspect", "-f", '{{(index (index .NetworkSettings.Ports "80/tcp") 0)'
                 '.HostPort}}', "web")
        assert out == "8080\n"
        out = ok(host, "inspect", "-f", '{{if .State.Running}}up{{else}}down{{end}} '
                 '{{index .Config.Labels "x"}}{{println}}{{join .Config.Cmd " "}}',
                 "web", "done")
        assert out == "up <no value>\nsleep 1000\ndown <no value>\nsh -c exit 3\n"
        # a bad template: one line, exit 125, nothing on stdout
        for bad in ("{{.State.Pid", "{{nope .X}}", "{{.NoSuchKey}}"):
            res = host.minirun("inspect", "-f", bad, "web")
            assert res.returncode == 125 and res.stdout == "", bad
            assert res.stderr.startswith("minirun: template parsing error: template: ")
            assert res.stderr.count("\n") == 1
    finally:
        host.minirun("rm", "-f", "web", "done", check=True)


def test_ps_columns_flags_and_filters(host):
    ok(host, "network", "create", "--subnet", "192.168.77.0/24", "lan")
    try:
        ids = {}
        ids["old"] = detach(host, "old", "sh", "-c", "exit 2", extra=("--network", "none"))
        wait_exit(host, "old")
        ids["web"] = detach(host, "web", "sleep", "1000", extra=("-p", "8080:80"))
        ids["db"] = detach(host, "db", "sleep", "1001", extra=("--network", "lan"))
        lines = ok(host, "ps").splitlines()
        head = lines[0]
        assert re.split(r"\s{3,}", head) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                                             "STATUS", "PORTS", "NAMES"]
        names = [line.split()[-1] for line in lines[1:]]
        assert names == ["db", "web"]  # running only, newest first
        web = lines[2]
        assert web.startswith(ids["web"][:12] + "   ")
        assert web[head.index("IMAGE"):].startswith(R)
        assert web[head.index("COMMAND"):].startswith('"sleep 1000"')
        assert web[head.index("STATUS"):].startswith("Up ")
        assert web[head.index("PORTS"):].startswith("0.0.0.0:8080->80/tcp")
        assert re.match(r"(Less than a second|\d+ seconds?|About a minute) ago",
                        web[head.index("CREATED"):])
        every = ok(host, "ps", "-a").splitlines()[1:]
        assert [line.split()[-1] for line in every] == ["db", "web", "old"]
        assert "Exited (2) " in every[2]
        assert ok(host, "ps", "-q").split() == [ids["db"][:12], ids["web"][:12]]
        assert ok(host, "ps", "-aq", "--no-trunc").split() == [ids["db"], ids["web"],
                                                               ids["old"]]
        assert ok(host, "ps", "-l", "-q").split() == [ids["db"][:12]]
        assert ok(host, "ps", "-n", "2", "-q").split() == [ids["db"][:12], ids["web"][:12]]

        def ps(*flt):
            return ok(host, "ps", "-a", "--format", "{{.Names}}",
                      *[x for f in flt for x in ("--filter", f)]).split()
        assert ps("name=web") == ["web"] and ps("name=^o") == ["old"]
        assert ps("name=web", "name=db") == ["db", "web"]            # OR within a key
        assert ps("name=web", "status=exited") == []                 # AND across keys
        assert ps("status=exited") == ["old"] and ps("exited=2") == ["old"]
        assert ps("network=lan") == ["db"] and ps("network=bridge") == ["web"]
        assert ps(f"id={ids['web'][:6]}") == ["web"] and ps(f"ancestor={R}") == [
            "db", "web", "old"]
        assert ps("label=nope") == []
        # a status filter needs no -a, as Docker's
        assert ok(host, "ps", "--filter", "status=exited", "--format", "{{.Names}}") == "old\n"
        res = host.minirun("ps", "--filter", "colour=red")
        assert res.returncode == 125 and "invalid filter 'colour'" in res.stderr
        # --format: templates, table, json; the host PID and IP a learner looks for
        info = host.inspect("web")
        out = ok(host, "ps", "--filter", "name=web", "--format",
                 "table {{.Names}}\\t{{.Pid}}\\t{{.IPAddress}}\\t{{.Networks}}")
        assert out.splitlines() == [
            "NAMES     PID       IP ADDRESS   NETWORKS",
            f"web       {info['State']['Pid']:<10}{info['NetworkSettings']['IPAddress']:<13}"
            "bridge"]
        row = json.loads(ok(host, "ps", "--filter", "name=web", "--format", "json"))
        assert row["Names"] == "web" and row["State"] == "running"
        assert row["Ports"] == "0.0.0.0:8080->80/tcp" and row["Command"] == '"sleep 1000"'
        res = host.minirun("ps", "--format", "{{.Nope}}")
        assert res.returncode == 125 and res.stdout == ""
    finally:
        host.minirun("rm", "-f", "old", "web", "db", check=True)
        host.minirun("network", "rm", "lan", check=True)


def test_network_inspect_and_ls_format(host):
    ok(host, "network", "create", "--subnet", "192.168.78.0/24", "lan")
    cid = detach(host, "a", "sleep", "1000", extra=("--network", "lan"))
    try:
        res = host.minirun("network", "inspect", "lan", "ghost")
        assert res.returncode == 1 and "no such network: ghost" in res.stderr
        [net] = json.loads(res.stdout)
        assert net["Name"] == "lan" and net["Driver"] == "bridge" and len(net["Id"]) == 64
        assert net["IPAM"]["Config"] == [{"Subnet": "192.168.78.0/24",
                                          "Gateway": "192.168.78.1"}]
        a = host.inspect("a")
        assert net["Containers"] == {cid: {
            "Name": "a", "EndpointID": "", "MacAddress": a["NetworkSettings"]["MacAddress"],
            "IPv4Address": a["NetworkSettings"]["IPAddress"] + "/24", "IPv6Address": ""}}
        assert net["Options"]["com.docker.network.bridge.name"] == net["Minirun"]["Bridge"]
        assert net["Minirun"]["Containers"]["a"]["HostVeth"] == a["Minirun"]["HostVeth"]
        out = ok(host, "network", "inspect", "-f",
                 "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{len .Containers}}", "lan")
        assert out == "192.168.78.0/24 1\n"
        out = ok(host, "network", "ls", "--format", "{{.Name}}:{{.Driver}}:{{.Containers}}")
        assert "lan:bridge:1" in out.split()
        out = ok(host, "network", "ls", "--format", "table {{.ID}}\\t{{.Name}}")
        assert out.splitlines()[0].split() == ["NETWORK", "ID", "NAME"]
        assert f"{net['Id'][:12]}   lan" in out
    finally:
        host.minirun("rm", "-f", "a", check=True)
        host.minirun("network", "rm", "lan", check=True)


def test_logs_streams_tail_times_follow(host):
    detach(host, "talk", "sh", "-c",
           "echo one; echo oops >&2; echo two; printf 'no newline'", extra=("--network", "none"))
    detach(host, "out", "sh", "-c", "echo a; echo b; printf 'no newline'",
           extra=("--network", "none"))
    try:
        wait_exit(host, "talk")
        wait_exit(host, "out")
        res = host.minirun("logs", "talk", check=True)
        assert res.stdout == "one\ntwo\nno newline" and res.stderr == "oops\n"
        # --tail counts records of both streams, whose order between the two pipes is
        # as they were read: the tail is taken on a container writing one stream
        assert ok(host, "logs", "--tail", "2", "out") == "b\nno newline"
        assert ok(host, "logs", "--tail", "1", "out") == "no newline"
        assert ok(host, "logs", "--tail", "0", "out") == ""
        assert ok(host, "logs", "--tail", "9", "out") == "a\nb\nno newline"
        assert ok(host, "logs", "-n", "all", "talk") == "one\ntwo\nno newline"
        res = host.minirun("logs", "-t", "talk", check=True)
        stamps = []
        for line in res.stdout.splitlines() + res.stderr.splitlines():
            stamp, _, text = line.partition(" ")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamp), line
            stamps.append((stamp, text))
        assert sorted(t for _, t in stamps) == ["no newline", "one", "oops", "two"]
        # --since/--until against the records' own times (no clock in the test)
        first = min(s for s, _ in stamps)
        last = max(s for s, _ in stamps)
        assert ok(host, "logs", "--since", first, "talk") == "one\ntwo\nno newline"
        assert ok(host, "logs", "--since", "2h", "--until", last, "talk").startswith("one\n")
        assert ok(host, "logs", "--until", "2000-01-01T00:00:00Z", "talk") == ""
        assert ok(host, "logs", "--since", "1m", "talk") == "one\ntwo\nno newline"
        res = host.minirun("logs", "--since", "yesterday", "talk")
        assert res.returncode == 125 and "invalid time" in res.stderr
        # the record format on disk: Docker's json-file
        path = host.inspect("talk")["LogPath"]
        recs = [json.loads(line) for line in open(path)]
        assert recs[0]["log"] == "one\n" and recs[0]["stream"] == "stdout"
        assert {r["stream"] for r in recs} == {"stdout", "stderr"}
    finally:
        host.minirun("rm", "-f", "talk", "out", check=True)


def test_logs_follow_until_exit(host):
    # -f prints what comes while the container runs and returns when it exits; the
    # container waits for a line on a FIFO the test writes after -f started
    fifo = host.dir / "go"
    os.mkfifo(fifo)
    # (what it writes last may still be in its pipes when PID 1 is gone: -f waits for it)
    detach(host, "f", "sh", "-c", "echo before; read x < /go; seq 1 20000; echo bye >&2",
           extra=("--network", "none", "-v", f"{fifo}:/go"))
    try:
        p = host.popen(MINIRUN + ["logs", "-f", "f"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        assert p.stdout.readline() == b"before\n"  # -f is reading
        with open(fifo, "w") as w:
            w.write("go\n")
        out, err = p.communicate(timeout=30)
        assert out == "".join(f"{i}\n" for i in range(1, 20001)).encode()
        assert err == b"bye\n" and p.returncode == 0
    finally:
        host.minirun("rm", "-f", "f", check=True)


def test_foreground_containers_are_logged(host):
    res = host.minirun("run", "--name", "fg", "--network", "none", R, "sh", "-c",
                       "echo out; echo err >&2; exit 4")
    # the terminal gets the same as before, the exit code too
    assert (res.returncode, res.stdout, res.stderr) == (4, "out\n", "err\n")
    try:
        logs = host.minirun("logs", "fg", check=True)
        assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
        big = host.minirun("run", "--name", "big", "--network", "none", R, "seq", "1", "50000",
                           check=True)
        assert big.stdout == "".join(f"{i}\n" for i in range(1, 50001))
        assert ok(host, "logs", "--tail", "1", "big") == "50000\n"
    finally:
        host.minirun("rm", "-f", "fg", "big", check=True)
    # --rm: no log is kept (it would go with the container), the output is unchanged
    res = host.minirun("run", "--rm", "--network", "none", R, "sh", "-c", "echo a; echo b >&2")
    assert (res.returncode, res.stdout, res.stderr) == (0, "a\n", "b\n")


def test_images_and_stats_format(host):
    assert ok(host, "images", "--format", "{{.Repository}}") == ""
    assert ok(host, "images", "--format", "table {{.ID}}\\t{{.Size}}").split() == [
        "IMAGE", "ID", "SIZE"]
    detach(host, "s", "sleep", "1000", extra=("--network", "none"))
    try:
        out = ok(host, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "s")
        assert out == "s 1\n"
        out = ok(host, "stats", "--no-stream", "--format", "table {{.Name}}\\t{{.PIDs}}", "s")
        assert out.splitlines() == ["NAME      PIDS", "s         1"]
        res = host.minirun("stats", "--no-stream", "--format", "{{.Nope", "s")
        assert res.returncode == 125 and res.stdout == ""
    finally:
        host.minirun("rm", "-f", "s", check=True)
