"""The command line behind a company network: ``--ca-bundle`` against a fake served over
TLS with a CA made here (trustme), ``--proxy`` and ``HTTPS_PROXY`` through a real forward
proxy on loopback that counts what passes, and the errors of each as one line (exit 1 for
a refused certificate, proxy or oversized answer; exit 2 for a bad option), never a
password."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from arena_async.__main__ import main
from arena_async.testing import FakeAkana, FakeArena, Fault, FaultPlan, ForwardProxy

from ._helpers import canonical, items_file, point_at, problems, read_jsonl, served, truth

PROXY_PASSWORD = "pr0xy-s3cret"
NETWORK_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
               "all_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")
ARENA_ENV = ("ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_SESSION_ID", "ARENA_WORKSPACE_ID",
             "ARENA_BASE_URL", "ARENA_CLIENT_ID", "ARENA_CLIENT_SECRET", "ARENA_TOKEN_URL",
             "ARENA_SHARE")






def tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy or CA variable of the machine, no Arena credentials; each run alone."""
    for name in (*NETWORK_ENV, *ARENA_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARENA_SHARE", "none")
    return monkeypatch






def export(tmp_path: Path, items: Path, name: str, *more: str) -> list[str]:
    return ["export", "ticket-refs", "--items", str(items), "--out",
            str(tmp_path / name), "-q", *more]


# -- a private CA ------------------------------------------------------------------------

def test_a_tls_server_signed_by_a_private_ca(
        env: pytest.MonkeyPatch, ca: trustme.CA, ca_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=4, seed=3, ssl_context=tls_context(ca))
    items = items_file(tmp_path, fake)
    with served(fake):
        assert fake.url.startswith("https://")
        point_at(env, fake)
        # Without the CA: one line naming the problem and the command line's fix.
        assert main(export(tmp_path, items, "a.jsonl")) == 1
        err = capsys.readouterr().err
        assert len(problems(err)) == 1, err
        assert "Traceback" not in err
        assert "is not trusted" in err
        assert "--ca-bundle" in err
        assert "ssl=" not in err  # the Python option is not what a CLI user can give
        assert fake.requests == []  # nothing got through
        # With it: the export, complete.
        assert main(export(tmp_path, items, "b.jsonl", "--ca-bundle", str(ca_file))) == 0
        # SSL_CERT_FILE does the same (the CLI reads the standard variables) ...
        env.setenv("SSL_CERT_FILE", str(ca_file))
        assert main(export(tmp_path, items, "c.jsonl")) == 0
        # ... and --ca-bundle wins over it.
        env.setenv("SSL_CERT_FILE", str(tmp_path / "items.txt"))  # not a CA bundle
        assert main(export(tmp_path, items, "d.jsonl", "--ca-bundle", str(ca_file))) == 0
    expected = canonical(truth("ticket-refs", items=4, seed=3))
    for name in ("b.jsonl", "c.jsonl", "d.jsonl"):
        assert canonical(read_jsonl(tmp_path / name)) == expected


def test_a_bad_ca_bundle_is_a_usage_error(env: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("ARENA_EMAIL", "a@example.com")
    env.setenv("ARENA_PASSWORD", "pw")
    for bundle, words in ((tmp_path / "missing.pem", "no CA bundle"),
                          (tmp_path, "is a folder")):
        assert main(["export", "ticket-refs", "--number", "PN-1", "--out",
                     str(tmp_path / "x.jsonl"), "--ca-bundle", str(bundle)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "--ca-bundle" in err
        assert words in err
    assert not (tmp_path / "x.jsonl").exists()


# -- a proxy ------------------------------------------------------------------------------

def test_through_a_proxy_given_by_option(env: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=3, seed=4)
    proxy = ForwardProxy(username="corp\\svc", password=PROXY_PASSWORD)
    items = items_file(tmp_path, fake)
    with served(fake, proxy):
        point_at(env, fake)
        assert main(export(tmp_path, items, "a.jsonl",
                           "--proxy", proxy.url_with_credentials)) == 0
        # Every request the fake saw came through the proxy, authenticated.
        assert proxy.forwarded == len(fake.requests) >= 1 + 3
        assert all(r.authenticated for r in proxy.requests)
        # A wrong proxy password: one line (407), no password, nothing reached Arena.
        seen = len(fake.requests)
        wrong = proxy.url_with_credentials.replace(PROXY_PASSWORD, "wr0ng-pass")
        assert main(export(tmp_path, items, "b.jsonl", "--proxy", wrong)) == 1
        err = capsys.readouterr().err
        assert len(problems(err)) == 1, err
        assert "407" in err
        assert "--proxy, or HTTPS_PROXY" in err
        assert "wr0ng-pass" not in err
        assert PROXY_PASSWORD not in err
        assert len(fake.requests) == seen
        # A malformed one: exit 2 before anything is sent, the password not shown.
        assert main(export(tmp_path, items, "c.jsonl", "--proxy",
                           f"https://u:{PROXY_PASSWORD}@proxy.corp:3128")) == 2
        err = capsys.readouterr().err
        assert "--proxy must be an http:// proxy URL" in err
        assert PROXY_PASSWORD not in err
    assert canonical(read_jsonl(tmp_path / "a.jsonl")) == \
        canonical(truth("ticket-refs", items=3, seed=4))


def test_https_proxy_from_the_environment_with_a_private_ca(
        env: pytest.MonkeyPatch, ca: trustme.CA, ca_file: Path, tmp_path: Path) -> None:
    fake = FakeArena.seeded(items=3, seed=5, ssl_context=tls_context(ca))
    proxy = ForwardProxy(username="svc", password=PROXY_PASSWORD)
    dead = ForwardProxy()  # started and stopped: nothing listens at its address
    items = items_file(tmp_path, fake)
    with served(fake, proxy, dead) as loop:
        dead_url = dead.url
        loop.run(dead.close())
        point_at(env, fake)
        env.setenv("HTTPS_PROXY", proxy.url_with_credentials)
        assert main(export(tmp_path, items, "a.jsonl", "--ca-bundle", str(ca_file))) == 0
        assert proxy.tunnels >= 1
        assert all(r.method == "CONNECT" and r.authenticated for r in proxy.requests)
        # NO_PROXY sends the host direct.
        proxy.clear()
        env.setenv("NO_PROXY", "127.0.0.1")
        assert main(export(tmp_path, items, "b.jsonl", "--ca-bundle", str(ca_file))) == 0
        assert proxy.requests == []
        # --proxy wins over HTTPS_PROXY (which names a proxy that is not there).
        env.delenv("NO_PROXY")
        env.setenv("HTTPS_PROXY", dead_url)
        assert main(export(tmp_path, items, "c.jsonl", "--ca-bundle", str(ca_file),
                           "--proxy", proxy.url_with_credentials)) == 0
        assert proxy.tunnels >= 1
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        assert canonical(read_jsonl(tmp_path / name)) == \
            canonical(truth("ticket-refs", items=3, seed=5))


def test_the_fakes_ignore_the_machines_proxy(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    proxy = ForwardProxy()
    with served(proxy):
        env.setenv("HTTP_PROXY", proxy.url)
        env.setenv("ALL_PROXY", proxy.url)
        assert main(["export", "ticket-refs", "--fake", "--fake-items", "3", "--out",
                     str(tmp_path / "a.jsonl"), "-q"]) == 0
        assert main(["export", "akana-tickets", "--fake", "--fake-tickets", "5", "--out",
                     str(tmp_path / "t.jsonl"), "-q"]) == 0
        assert proxy.requests == []


def test_akana_through_a_proxy(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeAkana.seeded(tickets=7, seed=2)
    proxy = ForwardProxy()
    with served(fake, proxy):
        env.setenv("AKANA_BASE_URL", fake.url)
        env.setenv("AKANA_EMAIL", fake.email)
        env.setenv("AKANA_PASSWORD", fake.password)
        assert main(["export", "akana-tickets", "--out", str(tmp_path / "t.jsonl"), "-q",
                     "--proxy", proxy.url]) == 0
        assert proxy.forwarded >= 2  # the login and a page at least
    assert len(read_jsonl(tmp_path / "t.jsonl")) == 7


# -- the answer size limit ----------------------------------------------------------------

def test_an_answer_over_the_limit_stops_the_run_in_one_line(
        env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = FaultPlan(seed=1)
    plan.add(Fault("huge_body", size=3 * 2**20, path=r"/tickets", times=1))
    fake = FakeArena.seeded(items=5, seed=6, faults=plan)
    items = items_file(tmp_path, fake)
    with served(fake):
        point_at(env, fake)
        assert main(export(tmp_path, items, "a.jsonl", "--max-answer-size", "1",
                           "--concurrency", "1")) == 1
        err = capsys.readouterr().err
        assert len(problems(err)) == 1, err
        assert "larger than" in err
        assert "--max-answer-size MIB" in err
        assert "max_answer_size=" in err  # the limit in force, in bytes
        # The run stopped at the first: one oversized answer asked, not one per item.
        assert len([r for r in fake.requests if r.path.endswith("/tickets")]) == 1
        # The checkpoint kept what was done: the same command resumes (the fault is spent).
        assert main(export(tmp_path, items, "a.jsonl", "--max-answer-size", "1")) == 0
    assert canonical(read_jsonl(tmp_path / "a.jsonl")) == \
        canonical(truth("ticket-refs", items=5, seed=6))
