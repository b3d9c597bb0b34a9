"""Integer fields of signed commands are bounded at screening (SQLite INTEGER is int64).

Before the bounds, a validly signed command with `exp` >= 2^62 overflowed SQLite when its id
was remembered: the command got no `cmd_result` at all. Now every integer field is checked at
screening and the refusal is persisted and sent as a cmd_result like any other.
"""

import time
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.harness.uplink_site import GW, Site
from tests.uplink.test_commands import TOPICS, results, signed_cmd
from uplink.commands import INT64_MAX, INT64_MIN, MAX_EXP_S, has_int_beyond_int64, screen_command
from uplink.cose import sign1

KEY = Ed25519PrivateKey.generate()
NOW = 1_800_000_000.0


def screened_reason(exp: Any = None, args: Any = None) -> str | None:
    body = {"id": "c-1", "gw": GW, "exp": int(NOW) + 60 if exp is None else exp, "op": "ping",
            "args": {} if args is None else args}
    raw = sign1(cbor2.dumps(body), KEY, b"headend")
    return screen_command(raw, KEY.public_key(), GW, NOW).reason


@pytest.mark.parametrize(("exp", "reason"), [
    (MAX_EXP_S, None), (MAX_EXP_S + 1, "bad_exp"), (2**62, "bad_exp"), (2**64, "bad_exp"),
    (-1, "bad_exp"), (-(2**70), "bad_exp"), (0, "expired"), (int(NOW) - 1, "expired"),
])
def test_exp_bound_both_sides(exp: int, reason: str | None) -> None:
    assert screened_reason(exp=exp) == reason


@pytest.mark.parametrize(("args", "reason"), [
    ({"n": INT64_MAX}, None), ({"n": INT64_MAX + 1}, "bad_integer"),
    ({"n": INT64_MIN}, None), ({"n": INT64_MIN - 1}, "bad_integer"),
    ({"deep": [{"x": [1, 2, 2**64]}]}, "bad_integer"),
    ({2**64: "key"}, "bad_integer"),
    ({"tagged": cbor2.CBORTag(999, [2**70])}, "bad_integer"),
    ({"amount": "1E+999999", "flag": True}, None),  # text and booleans are the handlers' job
])
def test_integers_in_args_bounded(args: dict[Any, Any], reason: str | None) -> None:
    assert screened_reason(args=args) == reason


def test_other_gateway_still_named_first() -> None:
    body = {"id": "c", "gw": "gw-other", "exp": 2**70, "op": "ping", "args": {}}
    raw = sign1(cbor2.dumps(body), KEY, b"headend")
    assert screen_command(raw, KEY.public_key(), GW, NOW).reason == "other_gateway"


def test_shared_and_cyclic_structures_terminate() -> None:
    shared: list[Any] = [1]
    for _ in range(200):  # 2^200 paths, 200 distinct objects
        shared = [shared, shared]
    assert has_int_beyond_int64({"s": shared}) is False
    cyclic: list[Any] = [5]
    cyclic.append(cyclic)
    assert has_int_beyond_int64({"c": cyclic}) is False
    cyclic.append(2**64)
    assert has_int_beyond_int64({"c": cyclic}) is True


async def test_out_of_range_command_gets_a_result_and_the_next_one_runs(
        site: Site, server_key: Ed25519PrivateKey) -> None:
    exp_now = int(time.time()) + 60
    cases = [
        signed_cmd(server_key, "c-exp62", exp=2**62),
        signed_cmd(server_key, "c-exp-max", exp=MAX_EXP_S),  # the bound itself is accepted
        signed_cmd(server_key, "c-neg", exp=-5),
        signed_cmd(server_key, "c-big-arg", args={"n": 2**63}, exp=exp_now),
        signed_cmd(server_key, "c-after"),
    ]
    for sent, raw in enumerate(cases, 1):
        site.headend.publish_signed(TOPICS["cmd"], raw)
        found = await results(site, sent)  # each one answered before the next goes
    reasons = {r["body"]["cmd"]: r["body"]["r"].get("reason") or "ok" for r in found}
    assert reasons == {"c-exp62": "bad_exp", "c-exp-max": "ok", "c-neg": "bad_exp",
                       "c-big-arg": "bad_integer", "c-after": "ok"}
