"""IP address management: persistent, concurrency-safe, host-local style.

On-disk layout of one network's store (``<root>/networks/<name>/ipam/``)::

    lock            flock'ed around every read-modify-write, so concurrent
                    `minirun run` processes never pick the same address
    last_reserved   the address handed out last; the next dynamic allocation
                    starts after it (round-robin), so a freed address is not
                    reused at once -- stale ARP entries and conntrack state of
                    the old container then cannot hit the new one
    10.88.5.2       one file per lease, created with O_CREAT|O_EXCL (a second
                    line of defence should the lock ever be bypassed), holding
                    {"owner": <container id>, "boot_id": <kernel boot id>}

The boot id is there because /var/lib survives a reboot while every container
does not: a lease recorded under another boot is free.

Pure helpers (`parse_network`, `next_candidates`, `subnet_overlaps`,
`choose_free_subnet`) hold the policy and test without touching the disk.
"""
from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator
from ..tuples import NamedTuple

from minirun import faults, fsutil
from minirun.errors import Conflict, SyscallError, UsageError

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

LOCK_FILE = "lock"
LAST_RESERVED_FILE = "last_reserved"
OWNER_PREFIX = "owner-"  # owner-<container id>: the address it holds, for an O(1) lookup
# A /31 or /32 leaves no room for a gateway plus one container.
MAX_PREFIXLEN = 30


# --------------------------------------------------------------------------
# Pure policy
# --------------------------------------------------------------------------

def parse_network(subnet: str, gateway: str) -> tuple[IPv4Network, IPv4Address]:
    """Validate a subnet and its gateway; UsageError with a one-line reason otherwise."""
    try:
        net = IPv4Network(subnet, strict=True)
    except ValueError as exc:
        if ":" in subnet:
            raise UsageError(f'invalid subnet "{subnet}": IPv6 is not supported yet') from None
        raise UsageError(f'invalid subnet "{subnet}": {exc}') from None
    if net.prefixlen > MAX_PREFIXLEN:
        raise UsageError(f"subnet {net} is too small: use /{MAX_PREFIXLEN} or larger")
    try:
        gw = IPv4Address(gateway)
    except ValueError:
        raise UsageError(f'invalid gateway "{gateway}": not an IPv4 address') from None
    if gw not in net:
        raise UsageError(f"gateway {gw} is outside subnet {net}")
    if gw in (net.network_address, net.broadcast_address):
        raise UsageError(f"gateway {gw} is the network or broadcast address of {net}")
    return net, gw


def next_candidates(subnet: str, gateway: str, last: str | None,
                    taken: Iterable[str]) -> Iterator[str]:
    """Yield free addresses in round-robin order: after `last`, then wrap around.

    Lazily iterates integers rather than building a list, so a /16 costs
    nothing until addresses are actually examined. Never yields the network,
    broadcast or gateway address, nor anything in `taken`.
    """
    net, gw = parse_network(subnet, gateway)
    taken_ints = {int(IPv4Address(ip)) for ip in taken}
    taken_ints.add(int(gw))
    first = int(net.network_address) + 1
    last_host = int(net.broadcast_address) - 1
    count = last_host - first + 1
    start = first
    if last is not None:
        try:
            last_int = int(IPv4Address(last))
        except ValueError:
            last_int = None  # an unreadable cursor only costs the round-robin order
        if last_int is not None and first <= last_int <= last_host:
            start = last_int + 1
    for i in range(count):
        candidate = first + (start - first + i) % count
        if candidate not in taken_ints:
            yield str(IPv4Address(candidate))


def subnet_overlaps(a: str, b: str) -> bool:
    """True if two IPv4 networks share any address (host bits are ignored, as in routes)."""
    try:
        return IPv4Network(a, strict=False).overlaps(IPv4Network(b, strict=False))
    except ValueError as exc:
        raise UsageError(f"invalid subnet: {exc}") from None


def choose_free_subnet(candidates: list[str], in_use: list[str]) -> str | None:
    """The first candidate overlapping nothing in `in_use` (other runtimes, host routes,
    other minirun networks), or None if every candidate clashes."""
    for candidate in candidates:
        if not any(subnet_overlaps(candidate, used) for used in in_use):
            return candidate
    return None


def short_id(owner: str) -> str:
    """Container ids are long; 12 characters identify one, as in `docker ps`."""
    return owner[:12]


# --------------------------------------------------------------------------
# On-disk store
# --------------------------------------------------------------------------

class Lease(NamedTuple):
    ip: str
    owner: str | None  # None: the file is unreadable (its writer died mid-write)
    boot_id: str | None

    def is_current(self, boot: str) -> bool:
        """A lease counts only if it is readable and from this boot."""
        return self.owner is not None and self.boot_id == boot


class Ipam:
    """Allocates addresses of one network to containers, persistently.

    Every operation holds the store's lock for its whole read-modify-write.
    All lease writers hold that lock, so a lease file found empty or corrupt
    under the lock belongs to a writer that died mid-write: it is treated as
    free.
    """

    def __init__(self, store_dir: Path, subnet: str, gateway: str, network: str | None = None):
        self.store_dir = Path(store_dir)
        self.net, self.gateway = parse_network(subnet, gateway)
        self.subnet = str(self.net)
        # Used only in messages; the store normally sits at <networks>/<name>/ipam.
        if network is None:
            network = self.store_dir.parent.name if self.store_dir.name == "ipam" else self.store_dir.name
        self.network = network

    # -- public API --------------------------------------------------------

    def allocate(self, owner: str, requested: str | None = None) -> str:
        """Lease an address to `owner` (a container id); `requested` is a static --ip.

        One address per owner per network: if the owner already holds a lease
        of this boot, that address is returned (so a retried start is harmless).
        The cost does not grow with the number of leases: the owner's address is
        found through its owner file, and a dynamic allocation only reads the
        lease files it collides with.
        """
        _check_owner(owner)
        with self._lock():
            boot = fsutil.boot_id()
            held = self._held_by(owner, boot)
            if held is not None:
                if requested is not None and self._normalise(requested) != held:
                    raise Conflict(f"container {short_id(owner)} already holds {held} "
                                   f"in network {self.network}")
                return held
            if requested is not None:
                leases = self._read_leases()
                current = {ip: lease.owner for ip, lease in leases.items()
                           if lease.is_current(boot)}
                ip = self._allocate_static(owner, requested, current, boot)
            else:
                ip = self._allocate_dynamic(owner, {}, boot)
            fsutil.atomic_write(self.store_dir / (OWNER_PREFIX + owner), ip + "\n", mode=0o644)
            return ip

    def others_exist(self, ip: str | None) -> bool:
        """Whether any lease file but `ip`'s exists (a listing, no reads): is this the
        network's last container?"""
        try:
            names = os.listdir(self.store_dir)
        except FileNotFoundError:
            return False
        return any(n != ip and n[:1].isdigit() and n.count(".") == 3 for n in names)

    def _owner_file(self, owner: str) -> str | None:
        """The address `owner`'s owner file names (None: no file, or not an address of
        this subnet)."""
        try:
            ip = (self.store_dir / (OWNER_PREFIX + owner)).read_text().strip()
            return ip if IPv4Address(ip) in self.net else None
        except (FileNotFoundError, ValueError):
            return None

    def _held_by(self, owner: str, boot: str) -> str | None:
        try:
            ip = (self.store_dir / (OWNER_PREFIX + owner)).read_text().strip()
        except FileNotFoundError:
            return None
        lease = self._read_lease(ip) if ip else Lease(ip, None, None)
        return ip if lease.owner == owner and lease.is_current(boot) else None

    def release(self, owner: str, ip: str | None = None) -> None:
        """Free `ip` if `owner` holds it, or every lease of `owner` (ip None).

        Idempotent: releasing something already gone is not an error, and a
        lease held by someone else is left alone.
        """
        with self._lock():
            if ip is not None:
                lease = self._read_lease(self._normalise(ip))
                targets = [lease] if lease.owner == owner else []
            else:
                # The owner file names its address: one read, not every lease (that scan
                # was ~20 ms of each teardown at 1000 containers, under the lock). No
                # owner file: a start died between claiming and writing it; scan then.
                held = self._owner_file(owner)
                leases = ({held: self._read_lease(held)} if held is not None
                          else self._read_leases())
                targets = [lease for lease in leases.values() if lease.owner == owner]
            for lease in targets:
                self._remove(lease.ip)
            if ip is None or targets:
                self._remove(OWNER_PREFIX + owner)

    def leases(self) -> dict[str, str]:
        """ip -> owner for the leases that count (this boot's); stale ones are free."""
        with self._lock(shared=True):
            boot = fsutil.boot_id()
            return {ip: lease.owner for ip, lease in sorted(self._read_leases().items(),
                                                            key=lambda kv: IPv4Address(kv[0]))
                    if lease.is_current(boot)}

    def in_use(self) -> bool:
        """Whether any lease counts (bool(leases()), reading lease files only until the
        first current one: each teardown asks, and leases() read all 1000 at 1000
        containers, under the network's lock)."""
        with self._lock(shared=True):
            boot = fsutil.boot_id()
            try:
                names = os.listdir(self.store_dir)
            except FileNotFoundError:
                return False
            for name in names:
                if name[:1].isdigit() and self._is_lease_name(name) \
                        and self._read_lease(name).is_current(boot):
                    return True
            return False

    def _is_lease_name(self, name: str) -> bool:
        """Whether a file name is a lease of this subnet (as _read_leases takes them)."""
        try:
            addr = IPv4Address(name)
        except ValueError:
            return False
        return addr in self.net and str(addr) == name

    def reclaim(self, is_alive: Callable[[str], bool]) -> list[str]:
        """Free leases of owners that are gone, of another boot, or unreadable.

        `is_alive(owner)` is asked once per owner. Returns the freed addresses.
        """
        freed: list[str] = []
        alive: dict[str, bool] = {}
        with self._lock():
            boot = fsutil.boot_id()
            for ip, lease in sorted(self._read_leases().items(), key=lambda kv: IPv4Address(kv[0])):
                if lease.is_current(boot):
                    if lease.owner not in alive:
                        alive[lease.owner] = bool(is_alive(lease.owner))
                    if alive[lease.owner]:
                        continue
                self._remove(ip)
                if lease.owner:
                    self._remove(OWNER_PREFIX + lease.owner)
                freed.append(ip)
        return freed

    # -- allocation --------------------------------------------------------

    def _allocate_static(self, owner: str, requested: str, current: dict[str, str], boot: str) -> str:
        ip = self._check_requested(requested)
        if ip in current:
            raise Conflict(f"address {ip} is already in use by container {short_id(current[ip])}")
        if not self._claim(ip, owner, boot):
            raise Conflict(f"address {ip} is already in use")
        return ip

    def _allocate_dynamic(self, owner: str, current: dict[str, str], boot: str) -> str:
        last = self._read_last_reserved()
        for ip in next_candidates(self.subnet, str(self.gateway), last, current):
            if self._claim(ip, owner, boot):
                fsutil.atomic_write(self.store_dir / LAST_RESERVED_FILE, ip + "\n", mode=0o644)
                return ip
        raise Conflict(f"no free address left in {self.subnet} (network {self.network})")

    def _check_requested(self, requested: str) -> str:
        try:
            addr = IPv4Address(requested)
        except ValueError:
            raise UsageError(f'invalid address "{requested}": not an IPv4 address') from None
        if addr not in self.net:
            raise UsageError(f"address {addr} is outside subnet {self.subnet} "
                             f"of network {self.network}")
        if addr == self.gateway:
            raise UsageError(f"address {addr} is the gateway of network {self.network}")
        if addr in (self.net.network_address, self.net.broadcast_address):
            raise UsageError(f"address {addr} is the network or broadcast address of {self.subnet}")
        return str(addr)

    def _claim(self, ip: str, owner: str, boot: str) -> bool:
        """Create the lease file exclusively; replace it only if it is stale.

        False if a live lease is in the way (only possible if someone wrote it
        without the lock -- O_EXCL keeps us from overwriting it).
        """
        path = self.store_dir / ip
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                lease = self._read_lease(ip)
                if lease.is_current(boot):
                    return False
                self._remove(ip)  # another boot's, or half-written: free
                continue
            except OSError as exc:
                raise SyscallError.from_oserror("create lease", str(path), exc) from None
            faults.point("write", path)  # an empty lease is free: see Ipam's docstring
            try:
                os.write(fd, _lease_bytes(owner, boot))
            except OSError as exc:
                os.close(fd)
                self._remove(ip)  # never leave an ownerless lease behind
                raise SyscallError.from_oserror("write lease", str(path), exc) from None
            os.close(fd)
            return True
        return False

    # -- disk helpers ------------------------------------------------------

    def _lock(self, shared: bool = False):
        return fsutil.locked(self.store_dir / LOCK_FILE, shared=shared)

    def _normalise(self, ip: str) -> str:
        try:
            return str(IPv4Address(ip))
        except ValueError:
            raise UsageError(f'invalid address "{ip}": not an IPv4 address') from None

    def _read_leases(self) -> dict[str, Lease]:
        """Every lease file of this subnet; other names (lock, temp files) are skipped."""
        try:
            names = os.listdir(self.store_dir)
        except FileNotFoundError:
            return {}
        return {name: self._read_lease(name) for name in names if self._is_lease_name(name)}

    def _read_lease(self, ip: str) -> Lease:
        try:
            data = json.loads((self.store_dir / ip).read_text())
            owner, boot = data["owner"], data["boot_id"]
            if isinstance(owner, str) and owner and isinstance(boot, str):
                return Lease(ip, owner, boot)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return Lease(ip, None, None)

    def _read_last_reserved(self) -> str | None:
        try:
            return (self.store_dir / LAST_RESERVED_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _remove(self, ip: str) -> None:
        try:
            os.unlink(self.store_dir / ip)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SyscallError.from_oserror("remove lease", str(self.store_dir / ip), exc) from None


def _check_owner(owner: str) -> None:
    if not owner or not isinstance(owner, str) or any(c in owner for c in "\n\0/"):
        raise UsageError(f"invalid lease owner {owner!r}")


def _lease_bytes(owner: str, boot: str) -> bytes:
    return (json.dumps({"owner": owner, "boot_id": boot}, sort_keys=True) + "\n").encode()
