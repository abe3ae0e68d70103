from minirun.network.dns import FALLBACK_NAMESERVERS, render_hosts, render_resolv


def test_hosts_with_an_address():
    text = render_hosts("web1", [("10.99.0.2", "web1 web")])
    assert text.splitlines() == ["127.0.0.1\tlocalhost",
                                 "::1\tlocalhost ip6-localhost ip6-loopback",
                                 "10.99.0.2\tweb1 web"]


def test_hosts_without_a_network_name_the_hostname_on_loopback():
    assert "127.0.1.1\tbox" in render_hosts("box", []).splitlines()


def test_resolv_drops_loopback_nameservers_keeps_the_rest():
    host = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.org\n"
    out = render_resolv(host).splitlines()
    assert "nameserver 127.0.0.53" not in out
    assert "nameserver 192.0.2.53" in out and "search example.org" in out


def test_resolv_falls_back_when_only_loopback_is_left():
    out = render_resolv("nameserver 127.0.0.53\nnameserver ::1\n")
    assert [l.split()[1] for l in out.splitlines() if l.startswith("nameserver")] == \
        list(FALLBACK_NAMESERVERS)


def test_resolv_keeps_loopback_for_host_network():
    assert "nameserver 127.0.0.53" in render_resolv("nameserver 127.0.0.53\n", True)


# -- --add-host, --dns, --dns-search, --dns-option, named networks ----------------------

import pytest  # noqa: E402

from minirun.errors import UsageError  # noqa: E402
from minirun.network import aardvark, dns  # noqa: E402

HOST = "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch lan.example\noptions edns0\n"


def test_hosts_extra_entries_come_before_the_containers_own():
    text = render_hosts("web1", [("10.99.0.2", "web1 web")], [("db", "192.0.2.9")])
    assert text.splitlines()[2:] == ["192.0.2.9\tdb", "10.99.0.2\tweb1 web"]


def test_host_gateway_is_the_networks_gateway():
    extra = [dns.parse_add_host("gw:host-gateway"), dns.parse_add_host("db=192.0.2.9")]
    assert dns.resolve_hosts(extra, "10.1.0.1") == [("gw", "10.1.0.1"), ("db", "192.0.2.9")]
    assert dns.resolve_hosts(extra, None) == [("db", "192.0.2.9")]


def test_dns_servers_search_and_options_replace_the_hosts():
    out = render_resolv(HOST, servers=("192.0.2.1",), search=("corp.example",),
                        options=("ndots:2",)).splitlines()
    assert [l for l in out if l.startswith("nameserver")] == ["nameserver 192.0.2.1"]
    assert "search corp.example" in out and "search lan.example" not in out
    assert "options ndots:2" in out and "options edns0" not in out


def test_dns_search_dot_means_none():
    out = render_resolv(HOST, search=(".",))
    assert "search" not in out


def test_named_network_domain_goes_first_host_search_kept():
    out = render_resolv(HOST, servers=("10.1.0.1",), comment="names here",
                        domain=dns.SEARCH_DOMAIN).splitlines()
    assert [l for l in out if l.startswith("nameserver")] == ["nameserver 10.1.0.1"]
    assert "search dns.minirun lan.example" in out and "options edns0" in out
    assert "# minirun: names here" in out


@pytest.mark.parametrize("fn, value", [
    (dns.parse_add_host, "nocolon"), (dns.parse_add_host, "h:1.2.3"),
    (dns.parse_add_host, "bad name:192.0.2.1"), (dns.parse_add_host, ":192.0.2.1"),
    (lambda v: dns.check_ip(v, "--dns"), "300.1.1.1"),
    (lambda v: dns.check_name(v, "--dns-search"), "a..b"),
    (dns.check_option, "two words"),
])
def test_bad_values_are_usage_errors(fn, value):
    with pytest.raises(UsageError):
        fn(value)


def test_ipv6_add_host_is_accepted():
    assert dns.parse_add_host("v6:[2001:db8::1]") == ("v6", "2001:db8::1")


def test_aardvark_entry_line():
    cid = "a" * 64
    assert aardvark.entry_line(cid, "10.1.0.2", ["web", "web", "www"]) == \
        f"{cid} 10.1.0.2  web,www"
    assert aardvark.entry_line(cid, "10.1.0.2", ["web"], ("192.0.2.53",)).endswith(
        " web 192.0.2.53")


def test_aardvark_config_files(tmp_path):
    from types import SimpleNamespace
    srv = aardvark.Server(SimpleNamespace(runroot=tmp_path))
    srv.set_entry("appnet", "10.1.0.1", "c1", "c1 10.1.0.2  a")
    srv.set_entry("appnet", "10.1.0.1", "c2", "c2 10.1.0.3  b")
    srv.set_entry("appnet", "10.1.0.1", "c1", "c1 10.1.0.2  a,alias")
    assert (tmp_path / "aardvark-dns" / "appnet").read_text() == \
        "10.1.0.1\nc2 10.1.0.3  b\nc1 10.1.0.2  a,alias\n"
    assert not list(tmp_path.glob(".aardvark-*"))  # the temporary file is gone
    srv.set_entry("appnet", "10.1.0.1", "c1", None)
    srv.set_entry("appnet", "10.1.0.1", "c2", None)
    assert srv.networks() == []
