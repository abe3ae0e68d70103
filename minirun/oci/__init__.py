"""minirun as an OCI runtime: `minirun-oci`, the command line runc has, for podman
(through conmon), containerd (through its runc shim) and anything else that drives an
OCI runtime.

    cli.py      the command line (argparse; every verb is a few lines here)
    config.py   config.json -> a checked Spec; unknown or unsupported fields are errors
    state.py    the state directory of one container under --root, and its status
    create.py   create/start/run: fork the container's init, hold it on a fifo, release it
    child.py    the init's side: namespaces, mounts, pivot_root, then the process
    process.py  becoming the configured process (rlimits, user, caps, seccomp, exec)
    cgroup.py   the container's cgroup from linux.cgroupsPath and linux.resources
    execute.py  exec: a further process in a running container
    hooks.py    the lifecycle hooks, with the state on their stdin

The container-side pieces are minirun's own: the safe mounting of rootfs.py (every
target opened with openat2 below the root), pivot_into, the pty of init.py, caps.py,
seccomp.py's compiler and cache, the cgroup backends of cgroups/.
"""
