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
