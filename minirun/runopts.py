"""The options of `minirun run` (and the global ones), defined once.

cli.py turns this table into click options; fastpath.py parses a valid
`minirun run ...` command line with it without importing click at all
(click and what it pulls in -- inspect, typing, datetime, uuid -- cost
~30 ms, a third of a container's start). Anything the fast path does not
fully understand (help, a typo, a missing argument) goes to click, so every
message and exit code stays click's.

Each entry: (flags, destination, kind, default, help); kind is "value",
"multi" (repeatable) or "flag".
"""
from __future__ import annotations

GLOBAL_OPTIONS = (
    (("--root",), "root", "value", None, "Persistent state [/var/lib/minirun]."),
    (("--runroot",), "runroot", "value", None, "Volatile state [/run/minirun]."),
    (("--firewall",), "firewall", "value", "nftables", "Firewall backend."),
    (("--explain",), "explain", "flag", False,
     "Print every host change as a shell command (--explain=only: print what `run`, "
     "`network create`/`rm` would do, and do nothing)."),
    (("--debug",), "debug", "flag", False, "Show tracebacks."),
    (("--cni-config-dir",), "cni_config_dir", "value", None,
     "Where --network cni:NAME finds NAME.conflist [/etc/cni/net.d]."),
    (("--cni-plugin-dir",), "cni_plugin_dir", "value", None,
     "Where CNI plugins are found, colon-separated [/usr/lib/cni:/opt/cni/bin]."),
)
GLOBAL_ENV = {"root": "MINIRUN_ROOT", "runroot": "MINIRUN_RUNROOT",
              "firewall": "MINIRUN_FIREWALL", "cni_config_dir": "MINIRUN_CNI_CONFIG_DIR",
              "cni_plugin_dir": "MINIRUN_CNI_PLUGIN_DIR"}
FIREWALLS = ("nftables", "iptables")

RUN_OPTIONS = (
    (("--name",), "name", "value", None, "Container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)."),
    (("-e", "--env"), "env", "multi", (), "NAME=VALUE (or NAME: the host's value, if set)."),
    (("--env-file",), "env_file", "multi", (), "File of NAME=VALUE lines."),
    (("-w", "--workdir"), "workdir", "value", "/", "Working directory inside."),
    (("-u", "--user"), "user", "value", None,
     "NAME|UID[:GROUP|GID], names from the container's /etc/passwd and /etc/group."),
    (("--hostname",), "hostname", "value", None, "Hostname [first 12 characters of the id]."),
    (("-i", "--interactive"), "interactive", "flag", False, "Keep stdin open."),
    (("-t", "--tty"), "tty", "flag", False, "Allocate a pseudo-terminal."),
    (("--rm",), "remove", "flag", False, "Remove the container when it exits."),
    (("-d", "--detach"), "detach", "flag", False, "Run in the background, print the id."),
    (("--init",), "init", "flag", False, "Run an init (catatonit) as PID 1 that reaps and forwards."),
    (("--read-only",), "read_only", "flag", False, "Mount the root file system read-only."),
    (("-v", "--volume"), "volume", "multi", (),
     "HOST:CONTAINER[:ro] or VOLUME:CONTAINER[:ro] (a named volume, made if missing)."),
    (("--mount",), "mount", "multi", (),
     "type=bind|volume|tmpfs,source=,target=[,readonly][,tmpfs-size=][,tmpfs-mode=]."),
    (("--tmpfs",), "tmpfs", "multi", (), "PATH[:OPTIONS]: a tmpfs mounted there."),
    (("-l", "--label"), "label", "multi", (), "KEY=VALUE metadata."),
    (("--label-file",), "label_file", "multi", (), "File of KEY=VALUE label lines."),
    (("--cidfile",), "cidfile", "value", None, "Write the container id to FILE (must not exist)."),
    (("--stop-signal",), "stop_signal", "value", None, "Signal `stop` sends [TERM]."),
    (("--stop-timeout",), "stop_timeout", "value", None,
     "Seconds `stop` waits before SIGKILL [10]."),
    (("--cap-add",), "cap_add", "multi", (), "Add a capability (or ALL)."),
    (("--cap-drop",), "cap_drop", "multi", (), "Drop a capability (or ALL)."),
    (("--network", "--net"), "network", "value", "bridge",
     "bridge, none, host, container:NAME, or a network's name."),
    (("-p", "--publish"), "publish", "multi", (),
     "[IP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|/udp]; HOSTPORT 0 or a range "
     "for one port: a free one."),
    (("-P", "--publish-all"), "publish_all", "flag", False,
     "Publish every port the image exposes on free host ports."),
    (("--ip",), "ip", "value", None, "A static address on the network."),
    (("--network-alias",), "network_alias", "multi", (),
     "Another name of the container on a named network (repeatable)."),
    (("--dns",), "dns", "multi", (), "A DNS server for the container (repeatable)."),
    (("--dns-search",), "dns_search", "multi", (), "A DNS search domain (repeatable)."),
    (("--dns-option",), "dns_option", "multi", (), "A resolv.conf option (repeatable)."),
    (("--add-host",), "add_host", "multi", (),
     "NAME:IP in /etc/hosts (repeatable); IP host-gateway is the network's gateway."),
    (("--security-opt",), "security_opt", "multi", (),
     "seccomp=unconfined, seccomp=PROFILE.json (Docker's format), no-new-privileges."),
    (("--privileged",), "privileged", "flag", False,
     "All capabilities, no seccomp filter, no masked paths, the host's devices."),
    (("-m", "--memory"), "memory", "value", None, "Memory limit (bytes, or 64m, 1g...)."),
    (("--memory-swap",), "memory_swap", "value", None,
     "Memory + swap limit; -1 unlimited [2x --memory]."),
    (("--cpus",), "cpus", "value", None, "Number of CPUs (CFS quota), e.g. 0.5."),
    (("--cpu-shares",), "cpu_shares", "value", None, "Relative CPU weight (v1 shares)."),
    (("--cpu-weight",), "cpu_weight", "value", None, "Relative CPU weight (v2, 1-10000)."),
    (("--pids-limit",), "pids_limit", "value", None, "Maximum processes; -1 unlimited."),
    (("--cpuset-cpus",), "cpuset_cpus", "value", None, "CPUs allowed, e.g. 0-1,3."),
    (("--restart",), "restart", "value", None,
     "no, on-failure[:N], always or unless-stopped (with -d)."),
    (("--entrypoint",), "entrypoint", "value", None,
     "Replace the image's ENTRYPOINT (and drop its CMD); \"\" resets it."),
)
