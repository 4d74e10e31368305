"""Sealed segments: the slots a protocol amendment adds, sealed as the first schedule was.

A segment holds the allocations of the sequences an amendment creates (a new site's
strata) or extends (a raised capacity), drawn from a fresh seed with the keyed draws of
:mod:`rjtrial.randomise.keyed`, encrypted with AES-256-GCM under the trial key, with one
hiding commitment per slot in ``rj_slots`` (:func:`rjtrial.registry.seal.slot_commitment`).
:mod:`rjtrial.registry.amend` records each segment in its amendment's audit entry and
chains its commitment; this module draws, seals, opens and checks them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from rjtrial._canonical import canonical_json, sha256_hex
from rjtrial._version import __version__
from rjtrial.errors import KeyFileError, RegistryError
from rjtrial.protocol import Protocol
from rjtrial.registry import store


@dataclass(frozen=True)
class OpenedSegment:
    """A decrypted segment: the slots an amendment sealed, held by a process with the key."""

    number: int
    seed: int
    nonce_secret: bytes
    ranges: tuple[tuple[str, int, int], ...]  # (sequence key, first slot, slot after the last)
    sequences: Mapping[str, list[int]]  # arm indices, from the range's first slot
    draws: list[float] | None  # minimisation: the draws of its slots, from the first

    def span(self, key: str) -> tuple[int, int] | None:
        for name, start, stop in self.ranges:
            if name == key:
                return start, stop
        return None

    def covers(self, key: str, slot: int) -> bool:
        span = self.span(key)
        return span is not None and span[0] <= slot < span[1]

    def value(self, key: str, slot: int, arms: tuple[str, ...]) -> str:
        span = self.span(key)
        if span is None:
            raise RegistryError(f"amendment segment {self.number} sealed no slots of sequence {key!r}")
        start = span[0]
        if self.draws is not None:
            return float(self.draws[slot - start]).hex()
        return arms[self.sequences[key][slot - start]]

    def nonce(self, key: str, slot: int) -> str:
        return hmac.new(self.nonce_secret, f"{key}|{slot}".encode("utf-8"), hashlib.sha256).hexdigest()


def segment_ranges(before: Protocol, after: Protocol) -> tuple[tuple[str, int, int], ...]:
    """The slots an amendment must seal: every slot of a new sequence, and those beyond a raised capacity."""
    old_keys = set(before.sequence_keys())
    old_capacity, new_capacity = before.randomisation.capacity, after.randomisation.capacity
    out = []
    for key in after.sequence_keys():
        start = old_capacity if key in old_keys else 0
        if start < new_capacity:
            out.append((key, start, new_capacity))
    return tuple(out)


def make_segment(number: int, protocol: Protocol, ranges, *, seed: int) -> OpenedSegment:
    """Draw a segment's allocations from ``seed``, as :func:`rjtrial.randomise.make_schedule` draws a schedule.

    Each sequence key's new slots are the keyed stream ``sequence|<key>`` of this seed
    (minimisation: the stream ``minimisation``), so an auditor regenerates them exactly.
    """
    from rjtrial.randomise.keyed import KeyedGenerator, schedule_secret
    from rjtrial.randomise.schedule import MINIMISATION_STREAM, fixed_sequence, sequence_stream

    secret = schedule_secret(seed)
    sequences: dict[str, list[int]] = {}
    draws = None
    for key, start, stop in ranges:
        if protocol.randomisation.is_adaptive:
            draws = [float(d) for d in KeyedGenerator(secret, MINIMISATION_STREAM).random(stop - start)]
        else:
            rng = KeyedGenerator(secret, sequence_stream(key))
            sequences[key] = [int(a) for a in fixed_sequence(protocol, stop - start, rng=rng)]
    return OpenedSegment(number, int(seed), secrets.token_bytes(32), tuple(ranges), sequences, draws)


def _aad(trial_id: str, number: int) -> bytes:
    return f"rjtrial-seal-v1|{trial_id}|segment|{number}".encode("utf-8")


def seal_segment(segment: OpenedSegment, key: bytes, trial_id: str) -> str:
    """The segment encrypted with AES-256-GCM under the trial key (base64)."""
    plaintext = canonical_json(
        {
            "seed": str(segment.seed),
            "nonce_secret": segment.nonce_secret.hex(),
            "ranges": [list(r) for r in segment.ranges],
            "sequences": segment.sequences,
            "draws": None if segment.draws is None else [d.hex() for d in segment.draws],
        }
    ).encode("utf-8")
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(trial_id, segment.number))).decode(
        "ascii"
    )


def open_segment(sealed: str, key: bytes, trial_id: str, number: int) -> OpenedSegment:
    """Decrypt a sealed segment; a wrong key or altered ciphertext raises :class:`KeyFileError`."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        data = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], _aad(trial_id, number)))
    except (InvalidTag, ValueError, TypeError):
        raise KeyFileError(
            f"the key does not open amendment {number}'s sealed segment (wrong key file, or the record was altered)"
        ) from None
    return OpenedSegment(
        number=number,
        seed=int(data["seed"]),
        nonce_secret=bytes.fromhex(data["nonce_secret"]),
        ranges=tuple((str(k), int(a), int(b)) for k, a, b in data["ranges"]),
        sequences={k: [int(x) for x in v] for k, v in data["sequences"].items()},
        draws=None if data["draws"] is None else [float.fromhex(d) for d in data["draws"]],
    )


def segment_slot_commitments(
    segment: OpenedSegment, trial_id: str, arms: tuple[str, ...]
) -> Iterator[tuple[str, int, str]]:
    """Every slot commitment of a segment, in the order of its ranges and slot number."""
    from rjtrial.registry.seal import slot_commitment

    for key, start, stop in segment.ranges:
        for slot in range(start, stop):
            yield (
                key,
                slot,
                slot_commitment(trial_id, key, slot, segment.value(key, slot, arms), segment.nonce(key, slot)),
            )


def segment_record(segment: OpenedSegment, protocol: Protocol) -> dict[str, Any]:
    """The public record of a segment (no seed): what it covers and how it was drawn."""
    from rjtrial.randomise.keyed import SCHEME

    return {
        "number": segment.number,
        "ranges": [list(r) for r in segment.ranges],
        "method": protocol.randomisation.method,
        "parameters": protocol.randomisation.to_dict(),
        "arms": list(protocol.arms),
        "ratio": list(protocol.ratio),
        "draws": SCHEME,
        "rjtrial_version": __version__,
    }


def chain_commitment(previous: str, record: Mapping[str, Any]) -> str:
    """``commitment_n`` of an amendment entry's payload, chained to ``previous``."""
    return sha256_hex(
        "rjtrial-amendment-v1",
        previous,
        canonical_json({k: record[k] for k in ("number", "amendment", "by", "reason", "effective_at")}),
        record["protocol"],
        canonical_json(record["closed"]),
        canonical_json(record["segment"]),
        hashlib.sha256(record["sealed"].encode("ascii")).hexdigest(),
        record["slots_sha256"],
    )


def regenerated_matches(segment: OpenedSegment, protocol: Protocol) -> bool:
    """Does the segment's seed regenerate the allocations it sealed?"""
    again = make_segment(segment.number, protocol, segment.ranges, seed=segment.seed)
    if segment.draws is not None:
        return again.draws == list(segment.draws)
    return dict(again.sequences) == {k: list(v) for k, v in segment.sequences.items()}


def slot_value(registry, sequence_key: str, slot: int) -> tuple[str, str]:
    """The committed value and nonce of a slot, from the first schedule or the segment that sealed it."""
    initial = registry.initial_protocol
    if slot < initial.randomisation.capacity and sequence_key in initial.sequence_keys():
        opened = registry._opened
        return opened.value(sequence_key, slot, initial.arms), opened.nonce(sequence_key, slot)
    for segment in registry._chain.segments:
        if segment.covers(sequence_key, slot):
            return segment.value(sequence_key, slot, initial.arms), segment.nonce(sequence_key, slot)
    raise RegistryError(f"slot {slot} of sequence {sequence_key!r} is not sealed")


def unsealed_slots_problems(registry) -> list[str]:
    """At unsealing: do the first schedule and every segment open to the slot commitments stored?"""
    from rjtrial.registry.seal import slot_commitments

    initial = registry.initial_protocol
    with store.read_transaction(registry._engine) as conn:
        stored = {(r.sequence_key, r.slot): r.commitment for r in conn.execute(select(store.slots)).all()}
    expected = list(
        slot_commitments(
            registry._opened, initial.id, initial.arms, initial.sequence_keys(), initial.randomisation.capacity
        )
    )
    for segment in registry._chain.segments:
        expected += list(segment_slot_commitments(segment, initial.id, initial.arms))
    mismatched = [f"{k}#{s}" for k, s, c in expected if stored.get((k, s)) != c]
    if mismatched or len(stored) != len(expected):
        return [
            f"sealed sequence does not match the slot commitments (first: {mismatched[0] if mismatched else 'slot count'})"
        ]
    return []


def whole_schedule(opened, segments, arms) -> tuple[dict[str, list[str]], list[float] | None]:
    """Every sequence (arm names) and the minimisation draws: the first schedule, then each segment's slots."""
    sequences = {k: [arms[a] for a in v] for k, v in opened.sequences.items()}
    draws = None if opened.draws is None else list(opened.draws)
    for segment in segments:
        for key, _, _ in segment.ranges:
            if segment.draws is not None:
                draws = (draws or []) + list(segment.draws)
            else:
                sequences.setdefault(key, []).extend(arms[a] for a in segment.sequences[key])
    return sequences, draws
