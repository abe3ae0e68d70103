"""The container's file system: a mount plan (pure) and the code that applies it.

`plan()` turns a spec into an ordered list of MountSteps relative to the new
root; unit tests check it without root. `apply()` carries it out inside the
container's mount namespace, before pivot_root. Every target is opened with
openat2(RESOLVE_IN_ROOT), so a hostile rootfs whose /proc, /dev or /etc is a
symlink (absolute or ../) cannot make minirun mount or write outside the root
(the runc CVE-2019-16884 / CVE-2021-30465 lessons); the mount then goes onto
/proc/self/fd/N, the object we checked, not onto a path that could change.

Read-only means read-only all the way down: a `:ro` volume is a recursive bind,
so whatever the host has mounted below its source comes along, and a plain
MS_REMOUNT|MS_RDONLY changes only the top mount -- writes to the submounts reach
the host. `make_readonly()` uses mount_setattr(AT_RECURSIVE) and, on kernels
without it (before 5.12), remounts every mount below the target that
/proc/self/mountinfo lists.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from .tuples import NamedTuple

from . import kernel as k
from .errors import MinirunError, SyscallError

NOSUID_NODEV_NOEXEC = k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC

DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
             ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug")
MASKED_DIRS = ("/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
INIT_PATH = "/dev/init"  # --init's program (catatonit), bound read-only
RO_ATTRS = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV  # volumes, /proc/sys
ROOT_RO_ATTRS = k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NODEV  # --read-only (setuid keeps working)


class MountStep(NamedTuple):
    """One mount inside the new root. `kind` says how the target is prepared."""
    target: str                   # absolute path inside the container
    fstype: str | None = None
    source: str | None = None     # host path for binds
    flags: int = 0
    data: str | None = None
    kind: str = "dir"             # dir | file (bind of a file) | mask | readonly | devices
    optional: bool = False        # skip quietly when the target does not exist (masks)
    propagation: int = 0          # MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (|MS_REC)


_TMPFS_FLAG = {"ro": k.MS_RDONLY, "nosuid": k.MS_NOSUID, "nodev": k.MS_NODEV,
               "noexec": k.MS_NOEXEC, "noatime": k.MS_NOATIME,
               "nodiratime": k.MS_NODIRATIME, "relatime": k.MS_RELATIME,
               "strictatime": k.MS_STRICTATIME, "sync": 16}
_TMPFS_CLEARS = {"rw": "ro", "suid": "nosuid", "dev": "nodev", "exec": "noexec",
                 "atime": "noatime", "diratime": "nodiratime", "norelatime": "relatime",
                 "nostrictatime": "strictatime", "async": "sync"}


def tmpfs_step(target: str, options) -> MountStep:
    """--tmpfs PATH:OPTS as a mount: later options win (noexec,exec: exec), as mount(8)."""
    flags, data = {}, []
    for o in options:
        if o in _TMPFS_FLAG:
            flags[o] = True
        elif o in _TMPFS_CLEARS:
            flags[_TMPFS_CLEARS[o]] = False
        else:
            data.append(o)
    bits = 0
    for name, on in flags.items():
        bits |= _TMPFS_FLAG[name] if on else 0
    return MountStep(target, "tmpfs", "tmpfs", bits, ",".join(data) or None, kind="tmpfs")


def plan(*, volumes=(), etc_files: dict[str, str] | None = None,
         tty_slave: str | None = None, privileged: bool = False, tmpfs=(),
         init_binary: str | None = None) -> list[MountStep]:
    """The mounts of a container, in order. `etc_files` maps /etc paths to host files.
    `privileged` (--privileged, as Docker): the host's devices in /dev, /sys read-write,
    nothing masked and nothing of /proc read-only. `tmpfs`: (target, options) pairs.
    `init_binary`: --init's program, bound read-only at INIT_PATH."""
    steps = [
        MountStep("/proc", "proc", "proc", NOSUID_NODEV_NOEXEC),
        MountStep("/dev", "tmpfs", "tmpfs", k.MS_NOSUID, "mode=755,size=65536k"),
        MountStep("/dev", kind="devices", data="host" if privileged else None),
        MountStep("/dev/pts", "devpts", "devpts", k.MS_NOSUID | k.MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        MountStep("/dev/shm", "tmpfs", "shm", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
        MountStep("/dev/mqueue", "mqueue", "mqueue", NOSUID_NODEV_NOEXEC),
        MountStep("/sys", "sysfs", "sysfs",
                  NOSUID_NODEV_NOEXEC | (0 if privileged else k.MS_RDONLY)),
    ]
    if init_binary:  # in the container's own /dev tmpfs: nothing is added to the image
        steps.append(MountStep(INIT_PATH, source=init_binary, flags=k.MS_BIND | k.MS_RDONLY,
                               kind="file"))
    for name, src in sorted((etc_files or {}).items()):
        steps.append(MountStep(name, source=src, flags=k.MS_BIND, kind="file"))
    for v in volumes:
        kind = "dir" if os.path.isdir(v.source) else "file"
        flags = k.MS_BIND | k.MS_REC | (k.MS_RDONLY if v.readonly else 0)
        steps.append(MountStep(v.target, source=v.source, flags=flags, kind=kind))
    steps += [tmpfs_step(t.target, t.options) for t in tmpfs]
    if tty_slave:
        steps.append(MountStep("/dev/console", source=tty_slave, flags=k.MS_BIND, kind="file"))
    if not privileged:
        steps += [MountStep(p, kind="mask", optional=True) for p in MASKED_FILES + MASKED_DIRS]
        steps += [MountStep(p, kind="readonly", optional=True) for p in READONLY_PATHS]
    return steps


class RootFS:
    """Applies a plan below `root` (a directory already mounted, e.g. the overlay)."""

    def __init__(self, root: str, kern=k.kernel):
        self.root = root
        self.k = kern
        self.rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    # -- safe path handling ------------------------------------------------
    def open_in_root(self, path: str, flags: int = os.O_PATH) -> int:
        return self.k.openat2(self.rootfd, path.lstrip("/") or ".", flags,
                              k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS)

    def ensure(self, path: str, kind: str) -> int:
        """Create `path` (a directory, or an empty file for file binds) inside the root
        without following any link out of it, and return an O_PATH fd of it."""
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            last = i == len(parts) - 1
            try:
                fd = self.open_in_root(sub)
            except SyscallError as e:
                if e.errno != 2:  # ENOENT
                    raise
                parent = self.open_in_root("/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY)
                try:
                    if last and kind == "file":
                        os.close(os.open(parts[i], os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW
                                         | os.O_CLOEXEC, 0o644, dir_fd=parent))
                    else:
                        os.mkdir(parts[i], 0o755, dir_fd=parent)
                except FileExistsError:
                    pass
                except OSError as e2:
                    raise SyscallError.from_oserror("create mount point", path, e2) from None
                finally:
                    os.close(parent)
                fd = self.open_in_root(sub)
            if not last:
                os.close(fd)
        return fd

    def _target_fd(self, step: MountStep) -> int | None:
        try:
            if step.optional:
                fd = self.open_in_root(step.target)
            else:
                fd = self.ensure(step.target, "file" if step.kind == "file" else "dir")
        except SyscallError as e:
            if step.optional and e.errno == 2:
                return None
            raise
        st, root_st = os.fstat(fd), os.fstat(self.rootfd)
        if (st.st_dev, st.st_ino) == (root_st.st_dev, root_st.st_ino):
            # A link such as /proc -> / (or /dev -> ../..) resolves to the root itself.
            # Mounting there stacks proc/tmpfs/sysfs over the whole rootfs; later steps,
            # which resolve from self.rootfd below that mount, then land in the hidden
            # layer, so the masks and read-only paths were silently skipped and the
            # container's / was a writable, unmasked procfs. Refuse it.
            os.close(fd)
            raise MinirunError(f"refusing to mount on {step.target}: it resolves to the "
                               "root of the rootfs")
        mode = st.st_mode
        is_file = stat.S_ISREG(mode) or stat.S_ISCHR(mode)
        if step.kind in ("mask", "readonly"):
            # anything the path resolves to inside the root (never a link: openat2 has
            # followed it there): a device node or fifo is masked with /dev/null, or
            # bound read-only onto itself, like a file
            ok, what = True, ""
        elif step.kind == "file":
            ok, what = is_file, "file"
        else:
            ok, what = stat.S_ISDIR(mode), "directory"
        if not ok:
            os.close(fd)
            raise MinirunError(f"refusing to mount on {step.target}: not an ordinary {what} "
                               "in the rootfs")
        return fd

    def apply(self, steps: list[MountStep]) -> None:
        for step in steps:
            if step.kind == "devices":
                self._populate_dev(host=step.data == "host")
                continue
            fd = self._target_fd(step)
            if fd is None:
                continue
            where = f"/proc/self/fd/{fd}"
            try:
                if step.kind == "mask":
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        self.k.mount("tmpfs", where, "tmpfs", k.MS_RDONLY, None,
                                     display=step.target)
                    else:
                        self.k.mount("/dev/null", where, None, k.MS_BIND, display=step.target)
                elif step.kind == "readonly":
                    self.k.mount(where, where, None, k.MS_BIND | k.MS_REC, display=step.target)
                    self._make_readonly(step.target)
                elif step.flags & k.MS_BIND:
                    # a bind ignores every flag but MS_REC: read-only is a second step
                    self.k.mount(step.source, where, None, step.flags & ~k.MS_RDONLY,
                                 display=step.target)
                    if step.flags & k.MS_RDONLY:
                        self._make_readonly(step.target)
                    elif step.flags & NOSUID_NODEV_NOEXEC:  # an OCI bind's nosuid etc.
                        self._set_attrs(step)
                else:
                    self.k.mount(step.source, where, step.fstype, step.flags, step.data,
                                 display=step.target)
                if step.propagation:
                    self._propagate(step)
            finally:
                os.close(fd)

    def _set_attrs(self, step: MountStep) -> None:
        attrs = 0
        for attr, ms in _MS_OF_ATTR.items():
            if step.flags & ms:
                attrs |= attr
        fd = self.open_in_root(step.target)
        try:
            rec = k.AT_RECURSIVE if step.flags & k.MS_REC else 0
            try:
                self.k.mount_setattr(fd, "", k.AT_EMPTY_PATH | rec, attrs, display=step.target)
            except SyscallError as e:
                if e.errno != errno.ENOSYS:
                    raise
                self.k.mount(None, f"/proc/self/fd/{fd}", None, k.MS_REMOUNT | k.MS_BIND
                             | (step.flags & NOSUID_NODEV_NOEXEC), display=step.target)
        finally:
            os.close(fd)

    def _propagate(self, step: MountStep) -> None:
        fd = self.open_in_root(step.target)
        try:
            self.k.mount(None, f"/proc/self/fd/{fd}", None, step.propagation,
                         display=step.target)
        finally:
            os.close(fd)

    def _make_readonly(self, target: str) -> None:
        # Reopen: the fd taken before the mount names the directory below it.
        fd = self.open_in_root(target)
        try:
            make_readonly(self.k, fd, target, RO_ATTRS)
        finally:
            os.close(fd)

    def _populate_dev(self, host: bool = False) -> None:
        devfd = self.open_in_root("/dev", os.O_PATH | os.O_DIRECTORY)
        dirfd = os.open(f"/proc/self/fd/{devfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.close(devfd)
        try:
            old = os.umask(0)
            try:
                for name, major, minor in DEVICES:
                    os.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dirfd)
                for name, target in DEV_LINKS:
                    os.symlink(target, name, dir_fd=dirfd)
                for d in ("pts", "shm", "mqueue"):
                    os.mkdir(d, 0o755, dir_fd=dirfd)
                if host:
                    copy_host_devices(f"/proc/self/fd/{dirfd}")
            finally:
                os.umask(old)
        except OSError as e:
            raise SyscallError.from_oserror("populate", "/dev", e) from None
        finally:
            os.close(dirfd)

    def close(self) -> None:
        os.close(self.rootfd)


# Not copied from the host's /dev for --privileged (runc's list): the host's terminals
# and its console, and what the container has of its own (shm, mqueue, fd links).
HOST_DEV_SKIP = frozenset({"pts", "shm", "mqueue", "fd", "console", ".lxc", ".lxd-mounts",
                           ".udev"})


def copy_host_devices(dest: str, source: str = "/dev") -> list[str]:
    """--privileged: a node in `dest` (the container's fresh /dev) for every character
    and block device of the host's /dev, with its mode and owner, as Docker does. Nodes,
    not a bind of the host's /dev: the container keeps its own devpts (a bind would hand
    it the host's terminals), /dev/shm and /dev/mqueue, and a device the host adds later
    does not appear. Runs before pivot_root, while `source` is still the host's."""
    made = []
    for top, dirs, files in os.walk(source):
        rel_dir = os.path.relpath(top, source)
        if rel_dir == ".":
            dirs[:] = [d for d in dirs if d not in HOST_DEV_SKIP]
        for name in files:
            if rel_dir == "." and name in HOST_DEV_SKIP:
                continue
            rel = os.path.normpath(os.path.join(rel_dir, name))
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue  # gone meanwhile
            if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                continue
            target = os.path.join(dest, rel)
            try:
                os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
                os.mknod(target, st.st_mode, st.st_rdev)
                os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
                os.chmod(target, stat.S_IMODE(st.st_mode))  # whatever the umask
            except FileExistsError:
                continue  # one of the container's own (null, zero, tty...)
            made.append(rel)
    return made


def pivot_into(root: str, kern=k.kernel) -> None:
    """Make `root` the root of this mount namespace and drop every trace of the old one.

    pivot_root(".", ".") stacks the old root on top of the new one at "/"; the
    lazy unmount then detaches it, so no path leads back to the host's files
    (chroot would leave them reachable through a second chroot).
    """
    os.chdir(root)
    kern.pivot_root(".", ".")
    kern.umount(".", k.MNT_DETACH)
    os.chdir("/")


# -- read-only, recursively ----------------------------------------------------------

_MS_OF_OPTION = {"ro": k.MS_RDONLY, "nosuid": k.MS_NOSUID, "nodev": k.MS_NODEV,
                 "noexec": k.MS_NOEXEC, "noatime": k.MS_NOATIME,
                 "nodiratime": k.MS_NODIRATIME, "relatime": k.MS_RELATIME,
                 "strictatime": k.MS_STRICTATIME}
_MS_OF_ATTR = {k.MOUNT_ATTR_RDONLY: k.MS_RDONLY, k.MOUNT_ATTR_NOSUID: k.MS_NOSUID,
               k.MOUNT_ATTR_NODEV: k.MS_NODEV, k.MOUNT_ATTR_NOEXEC: k.MS_NOEXEC}


class MountEntry(NamedTuple):
    id: int
    parent: int
    point: str        # the mount point, relative to this process's root
    options: str      # the per-mount options (ro/rw, nosuid, ...)


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text: str) -> list[MountEntry]:
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 6:
            out.append(MountEntry(int(f[0]), int(f[1]), _unescape(f[4]), f[5]))
    return out


def mounts_below(table: list[MountEntry], top: int, keep=frozenset()) -> list[MountEntry]:
    """The mounts below mount `top` (not itself), parents before children; the mounts
    whose ids are in `keep` are left out with everything below them."""
    children: dict[int, list[MountEntry]] = {}
    for m in table:
        if m.id != m.parent:
            children.setdefault(m.parent, []).append(m)
    out, todo = [], list(children.get(top, []))
    while todo:
        m = todo.pop(0)
        if m.id in keep:
            continue
        out.append(m)
        todo += children.get(m.id, [])
    return out


def make_readonly(kern, fd: int, where: str, attrs: int = RO_ATTRS,
                  keep=frozenset()) -> None:
    """Make the mount of `fd` and every mount below it read-only (plus the other
    MOUNT_ATTR_* flags in `attrs`), except the mounts whose ids are in `keep` and what is
    below them: with mount_setattr(AT_RECURSIVE) when there is nothing to keep, else
    mount by mount; by remounting each one on kernels without mount_setattr."""
    attrs |= k.MOUNT_ATTR_RDONLY
    have_setattr = True
    try:
        kern.mount_setattr(fd, "", k.AT_EMPTY_PATH | (0 if keep else k.AT_RECURSIVE), attrs,
                           display=where)
        if not keep:
            return
    except SyscallError as e:
        if e.errno != errno.ENOSYS:
            raise
        have_setattr = False
    table = parse_mountinfo(kern.mountinfo())
    top = kern.mount_id(fd)
    if not have_setattr:
        _remount_ro(kern, fd, where, _options_of(table, top), attrs)
    for m in mounts_below(table, top, keep):
        try:
            mfd = kern.openat2(k.AT_FDCWD, m.point, os.O_PATH, k.RESOLVE_NO_SYMLINKS)
        except SyscallError as e:
            if e.errno == errno.ENOENT:  # hidden below a later mount: unreachable
                continue
            raise
        try:
            if kern.mount_id(mfd) != m.id:
                continue  # covered by another mount on the same point, handled in its turn
            if have_setattr:
                kern.mount_setattr(mfd, "", k.AT_EMPTY_PATH, attrs, display=m.point)
            else:
                _remount_ro(kern, mfd, m.point, m.options, attrs)
        finally:
            os.close(mfd)


def make_mount_readonly(kern, where: str, attrs: int = ROOT_RO_ATTRS) -> None:
    """Make the one mount at `where` read-only, adding `attrs` to the flags it has
    (a bind remount would set exactly the flags it is given: nodev and nosuid lost)."""
    fd = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            kern.mount_setattr(fd, "", k.AT_EMPTY_PATH, attrs, display=where)
        except SyscallError as e:
            if e.errno != errno.ENOSYS:
                raise
            table = parse_mountinfo(kern.mountinfo())
            _remount_ro(kern, fd, where, _options_of(table, kern.mount_id(fd)), attrs)
    finally:
        os.close(fd)


def _options_of(table: list[MountEntry], mount_id: int) -> str:
    return next((m.options for m in table if m.id == mount_id), "")


def _remount_ro(kern, fd: int, where: str, options: str, attrs: int) -> None:
    """MS_REMOUNT|MS_BIND sets a mount's flags to exactly what it is given: keep the ones
    it has (nosuid, noexec, the atime mode...) and add ours."""
    flags = k.MS_BIND | k.MS_REMOUNT
    for opt in options.split(","):
        flags |= _MS_OF_OPTION.get(opt, 0)
    for attr, ms in _MS_OF_ATTR.items():
        if attrs & attr:
            flags |= ms
    kern.mount(None, f"/proc/self/fd/{fd}", None, flags, display=where)
