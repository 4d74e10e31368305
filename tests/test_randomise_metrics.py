"""Design metrics (rjtrial/randomise/metrics.py): exact values, agreement with simulation."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from rjtrial.protocol import Protocol
from rjtrial.randomise import engines, metrics, vectorised
from rjtrial.randomise.schedule import allocate_cohort, fixed_sequence

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "synthetic" / "protocols").glob("*.toml"))
EXACT = 1e-12  # exact values, computed in rational arithmetic and returned as float
Z = 4.0  # Monte Carlo agreement: within four standard errors (fixed seeds)


# ------------------------------------------------------------------ independent routes
def convergence_guess_rate(arms, ratio, sequence=None) -> float:
    """Proportion of ``arms`` a convergence guesser gets right (ties: fair random guess),
    counting within each sequence; written out plainly, one referral at a time."""
    scale = [math.lcm(*ratio) // r for r in ratio]  # c_k * scale_k orders c_k / r_k exactly
    counts: dict = {}
    right = 0.0
    for i, arm in enumerate(arms.tolist() if isinstance(arms, np.ndarray) else arms):
        c = counts.setdefault(0 if sequence is None else sequence[i], [0] * len(ratio))
        keys = [ck * sk for ck, sk in zip(c, scale)]
        low = min(keys)
        behind = [k for k, key in enumerate(keys) if key == low]
        right += (arm in behind) / len(behind)
        c[arm] += 1
    return right / len(arms)


def brute_force_block_guesses(ratio, size) -> Fraction:
    """Expected correct guesses in one block, averaging over every distinct arrangement."""
    content = [k for k, r in enumerate(ratio) for _ in range(r * size // sum(ratio))]
    arrangements = set(itertools.permutations(content))
    total = Fraction(0)
    for arrangement in arrangements:
        counts = [0] * len(ratio)
        for arm in arrangement:
            scaled = [Fraction(c, r) for c, r in zip(counts, ratio)]
            behind = [k for k, v in enumerate(scaled) if v == min(scaled)]
            total += Fraction(arm in behind, len(behind))
            counts[arm] += 1
    return total / len(arrangements)


def imbalance_of(counts, ratio) -> float:
    total = sum(counts)
    return float(sum(abs(Fraction(c) - Fraction(total * r, sum(ratio))) for c, r in zip(counts, ratio)))


# ------------------------------------------------------------------ exact values
@pytest.mark.parametrize(
    "sizes, expected",
    [([2], Fraction(3, 4)), ([4], Fraction(17, 24))],
    ids=["blocks of 2: 3/4", "blocks of 4: 17/24"],
)
def test_exact_predictability_of_1to1_blocks(make_protocol, sizes, expected):
    # Blackwell & Hodges (1957) convergence strategy; values stated in the brief and
    # reproduced by hand: block of 2 -> 1.5 correct of 2; block of 4 -> 17/6 of 4.
    result = metrics.predictability(make_protocol("blocks", block_sizes=sizes))
    assert result.method == "exact" and result.std_error == 0.0 and result.n is None
    assert result.correct_guess_probability == pytest.approx(float(expected), abs=EXACT)


@pytest.mark.parametrize("m", range(1, 7))
def test_1to1_blocks_match_the_closed_form(make_protocol, m):
    # For a 1:1 block of 2m the convergence guesser expects m + 2^(2m-1)/C(2m, m) - 1/2
    # correct guesses (it gives 3/2 and 17/6 for m = 1, 2: the values above).
    expected = (m + Fraction(2 ** (2 * m - 1), math.comb(2 * m, m)) - Fraction(1, 2)) / (2 * m)
    result = metrics.predictability(make_protocol("blocks", block_sizes=[2 * m]))
    assert result.correct_guess_probability == pytest.approx(float(expected), abs=EXACT)


@pytest.mark.parametrize(
    "ratio, sizes, weights",
    [
        ((1, 2), [3], None),
        ((1, 2), [3, 6], [1, 3]),
        ((2, 3), [5], None),
        ((1, 1, 1), [3, 6], None),
        ((1, 1, 2), [4], None),
        ((1, 1), [2, 4, 6], [1, 2, 3]),
    ],
)
def test_long_run_block_predictability_matches_brute_force_enumeration(make_protocol, ratio, sizes, weights):
    extra = {} if weights is None else {"block_weights": weights}
    protocol = make_protocol("blocks", ratio, block_sizes=sizes, **extra)
    w = [Fraction(x) for x in protocol.randomisation.block_weights]
    expected = sum(wi * brute_force_block_guesses(ratio, s) for wi, s in zip(w, sizes)) / sum(
        wi * s for wi, s in zip(w, sizes)
    )
    assert metrics.predictability(protocol).correct_guess_probability == pytest.approx(float(expected), abs=EXACT)


@pytest.mark.parametrize("ratio, sizes", [((1, 1), [4]), ((1, 2), [6]), ((1, 1, 1), [3])])
def test_finite_n_equals_long_run_after_whole_blocks(make_protocol, ratio, sizes):
    protocol = make_protocol("blocks", ratio, block_sizes=sizes)
    long_run = metrics.correct_guess_probability(protocol)
    assert metrics.correct_guess_probability(protocol, n=7 * sizes[0]) == pytest.approx(long_run, abs=EXACT)


@pytest.mark.parametrize("ratio, expected", [((1, 1), 0.5), ((1, 1, 1), 1 / 3), ((1, 1, 1, 1), 0.25)])
@pytest.mark.parametrize("n", [None, 1, 37])
def test_simple_randomisation_with_equal_ratio_is_guessed_at_chance(make_protocol, ratio, expected, n):
    result = metrics.predictability(make_protocol("simple", ratio), n=n)
    assert result.method == "exact"
    assert result.correct_guess_probability == pytest.approx(expected, abs=EXACT)


def test_biased_coin_with_certainty_is_blocks_of_two(make_protocol):
    # p = 1: Efron's coin forces every second allocation, exactly like 1:1 blocks of 2
    coin = make_protocol("biased_coin", probability=1.0)
    blocks = make_protocol("blocks", block_sizes=[2])
    for n in (None, 2, 40, 41):
        assert metrics.correct_guess_probability(coin, n=n) == pytest.approx(
            metrics.correct_guess_probability(blocks, n=n), abs=EXACT
        )


@pytest.mark.parametrize("p", [0.55, 2 / 3, 0.8, 0.9])
def test_biased_coin_long_run_is_the_limit_of_the_finite_n_values(make_protocol, p):
    protocol = make_protocol("biased_coin", probability=p)
    long_run = metrics.correct_guess_probability(protocol)
    assert metrics.correct_guess_probability(protocol, n=4000) == pytest.approx(long_run, abs=2e-3)


def test_biased_coin_p_half_is_simple_randomisation(make_protocol):
    protocol = make_protocol("biased_coin", probability=0.5)
    for n in (None, 25):
        assert metrics.correct_guess_probability(protocol, n=n) == pytest.approx(0.5, abs=EXACT)


# ------------------------------------------- exact values against engine simulations
ENGINE_CASES = {
    "blocks 2,4,6 1:1": ("blocks", (1, 1), {"block_sizes": [2, 4, 6]}, 30),
    "blocks 3,6 1:2 weighted": ("blocks", (1, 2), {"block_sizes": [3, 6], "block_weights": [2, 1]}, 31),
    "biased coin 1:1": ("biased_coin", (1, 1), {"probability": 2 / 3}, 30),
    "biased coin 1:2": ("biased_coin", (1, 2), {"probability": 0.8}, 30),
    "simple 1:3": ("simple", (1, 3), {}, 25),
}


@pytest.mark.parametrize("case", list(ENGINE_CASES), ids=list(ENGINE_CASES))
def test_exact_predictability_agrees_with_simulating_the_engine(make_protocol, case):
    method, ratio, params, n = ENGINE_CASES[case]
    protocol = make_protocol(method, ratio, **params)
    exact = metrics.predictability(protocol, n=n)
    assert exact.method == "exact"
    rates = [convergence_guess_rate(fixed_sequence(protocol, n, rng=seed), ratio) for seed in range(1000)]
    se = np.std(rates, ddof=1) / math.sqrt(len(rates))
    assert abs(np.mean(rates) - exact.correct_guess_probability) < Z * se


@pytest.mark.parametrize("case", list(ENGINE_CASES), ids=list(ENGINE_CASES))
def test_exact_predictability_agrees_with_the_vectorised_simulation(make_protocol, case):
    method, ratio, params, n = ENGINE_CASES[case]
    protocol = make_protocol(method, ratio, **params)
    exact = metrics.predictability(protocol, n=n, computation="exact")
    simulated = metrics.predictability(protocol, n=n, computation="simulation", n_simulations=4000, rng=11)
    assert simulated.method == "simulation" and simulated.n_simulations == 4000
    assert abs(simulated.correct_guess_probability - exact.correct_guess_probability) < Z * simulated.std_error


def test_stratified_exact_predictability_agrees_with_allocate_cohort(make_protocol):
    protocol = make_protocol("stratified_blocks", block_sizes=[2, 4])
    weights = {"site": [3, 2, 1]}
    n = 40
    exact = metrics.predictability(protocol, n=n, strata_probabilities=weights)
    rates = []
    for seed in range(400):
        gen = np.random.default_rng(seed)
        sites, sexes = gen.choice(3, size=n, p=[0.5, 1 / 3, 1 / 6]), gen.integers(0, 2, n)
        strata = [{"site": "abc"[i], "sex": "fm"[j]} for i, j in zip(sites, sexes)]
        arms = allocate_cohort(protocol, strata, rng=gen)
        rates.append(convergence_guess_rate(arms, (1, 1), [protocol.sequence_key(s) for s in strata]))
    se = np.std(rates, ddof=1) / math.sqrt(len(rates))
    assert abs(np.mean(rates) - exact.correct_guess_probability) < Z * se


def test_stratification_makes_a_short_trial_more_predictable_per_referral_than_the_long_run(make_protocol):
    # each stratum starts a fresh block, and the first guesses of a block are the easiest
    # to get wrong: predictability over few referrals per stratum is below the long run
    protocol = make_protocol("stratified_blocks", block_sizes=[4])
    assert metrics.correct_guess_probability(protocol, n=12) < metrics.correct_guess_probability(protocol)


def test_minimisation_predictability_is_simulated_and_reproducible(make_protocol):
    protocol = make_protocol("minimisation", (1, 2), weights={"site": 1, "sex": 2})
    first = metrics.predictability(protocol, n=60, n_simulations=300, rng=4)
    assert first.method == "simulation" and first.std_error > 0
    assert first == metrics.predictability(protocol, n=60, n_simulations=300, rng=4)
    assert first != metrics.predictability(protocol, n=60, n_simulations=300, rng=5)


def test_minimisation_predictability_agrees_with_allocate_cohort(make_protocol):
    protocol = make_protocol("minimisation", (1, 1), probability=0.8)
    n = 30
    simulated = metrics.predictability(protocol, n=n, n_simulations=3000, rng=8)
    rates = []
    for seed in range(300):
        gen = np.random.default_rng(seed)
        strata = [{"site": "abc"[i], "sex": "fm"[j]} for i, j in zip(gen.integers(0, 3, n), gen.integers(0, 2, n))]
        rates.append(convergence_guess_rate(allocate_cohort(protocol, strata, rng=gen), (1, 1)))
    se = math.hypot(np.std(rates, ddof=1) / math.sqrt(len(rates)), simulated.std_error)
    assert abs(np.mean(rates) - simulated.correct_guess_probability) < Z * se


# ------------------------------------------------ vectorised samplers = the engines
@pytest.mark.parametrize("seed", range(5))
def test_vectorised_biased_coin_reproduces_the_engine_draw_for_draw(seed):
    gen = np.random.default_rng(seed)
    ratio, p, n = (int(gen.integers(1, 4)), int(gen.integers(1, 4))), float(gen.choice([0.6, 2 / 3, 1.0])), 80
    uniforms = np.array([np.random.default_rng(1000 * seed + i).random(n) for i in range(20)])
    paths = vectorised.biased_coin_paths(ratio, p, uniforms)
    for i in range(20):
        assert np.array_equal(paths[i], engines.biased_coin(ratio, n, probability=p, rng=1000 * seed + i))


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_minimisation_reproduces_the_engine_draw_for_draw(seed):
    gen = np.random.default_rng(seed)
    k = int(gen.integers(2, 5))
    ratio = [int(x) for x in gen.integers(1, 4, k)]
    n_levels = [int(x) for x in gen.integers(2, 5, int(gen.integers(1, 4)))]
    weights = [float(x) for x in gen.choice([0.0, 0.5, 1.0, 2.0], len(n_levels))]
    probability = float(gen.choice([1.0 / k, 0.8, 1.0]))
    measure = ("range", "variance")[seed % 2]
    levels = np.stack([gen.integers(0, m, (10, 60)) for m in n_levels], axis=2)
    uniforms = gen.random((10, 60))
    paths = vectorised.minimisation_paths(
        levels, n_levels, ratio, weights=weights, probability=probability, imbalance=measure, uniforms=uniforms
    )
    for i in range(10):
        expected = engines.minimise(
            levels[i],
            n_levels,
            ratio,
            weights=weights,
            probability=probability,
            imbalance=measure,
            uniforms=uniforms[i],
        )
        assert np.array_equal(paths[i], expected)


@pytest.mark.parametrize("ratio, sizes", [((1, 1), [2, 4, 6]), ((1, 2), [3, 6]), ((1, 1, 2), [4, 8])])
def test_vectorised_blocks_have_the_engine_law_at_every_position(ratio, sizes):
    # P(arm k at position t) compared for the vectorised sampler and the engine
    n, rows = 20, 2500
    ours = vectorised.block_paths(ratio, sizes, [1 / len(sizes)] * len(sizes), rows, n, np.random.default_rng(1))
    engine = np.array([engines.permuted_blocks(ratio, n, block_sizes=sizes, rng=s) for s in range(rows)])
    for k in range(len(ratio)):
        p1, p2 = (ours == k).mean(axis=0), (engine == k).mean(axis=0)
        se = np.sqrt(p1 * (1 - p1) / rows + p2 * (1 - p2) / rows) + 1e-9
        assert (np.abs(p1 - p2) < Z * se).all()


# ----------------------------------------------------------------------- imbalance
def test_imbalance_of_simple_1to1_matches_the_binomial(make_protocol):
    # final |n_1 - n_0| = |2B - n| with B ~ Binomial(n, 1/2)
    n = 50
    result = metrics.imbalance(make_protocol("simple"), n=n, n_simulations=4000, rng=2)
    b = np.arange(n + 1)
    exact = float(stats.binom.pmf(b, n, 0.5) @ np.abs(2 * b - n))
    assert abs(result.expected_final - exact) < Z * result.std_error_final
    assert result.worst_case == n


@pytest.mark.parametrize(
    "ratio, sizes, expected",
    [((1, 1), [2, 4], 2.0), ((1, 1), [2, 4, 6], 3.0), ((1, 2), [3], 4 / 3), ((1, 2), [3, 6], 8 / 3)],
)
def test_worst_case_block_imbalance(make_protocol, ratio, sizes, expected):
    # 1:1: max_block / 2. 1:2 block of 3 after (1, 0): |1 - 1/3| + |0 - 2/3| = 4/3;
    # block of 6 after (2, 0): |2 - 2/3| + |0 - 4/3| = 8/3.
    result = metrics.imbalance(make_protocol("blocks", ratio, block_sizes=sizes), n=40, n_simulations=50, rng=0)
    assert result.worst_case == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize("ratio, sizes", [((1, 1), [2, 4, 6]), ((1, 2), [3, 6]), ((1, 1, 1), [3, 6])])
def test_worst_case_is_never_exceeded_and_is_reached(make_protocol, ratio, sizes):
    protocol = make_protocol("blocks", ratio, block_sizes=sizes)
    worst = metrics.imbalance(protocol, n=30, n_simulations=20, rng=0).worst_case
    largest = 0.0
    for seed in range(400):
        seq = fixed_sequence(protocol, 30, rng=seed)
        counts = np.zeros(len(ratio), dtype=int)
        for arm in seq:
            counts[arm] += 1
            largest = max(largest, imbalance_of(counts, ratio))
    assert largest <= worst + EXACT
    assert largest == pytest.approx(worst, abs=EXACT)


def test_stratum_worst_case_bounds_allocate_cohort(make_protocol):
    protocol = make_protocol("stratified_blocks", block_sizes=[2, 4, 6])
    result = metrics.imbalance(protocol, n=60, n_simulations=200, rng=1)
    assert result.worst_case is None and result.worst_case_stratum == 3.0
    assert result.expected_max_stratum <= result.worst_case_stratum
    for seed in range(30):
        gen = np.random.default_rng(seed)
        strata = [{"site": str(gen.choice(["a", "b", "c"])), "sex": str(gen.choice(["f", "m"]))} for _ in range(60)]
        arms = allocate_cohort(protocol, strata, rng=gen)
        keys = np.array([protocol.sequence_key(s) for s in strata])
        for key in set(keys):
            assert np.abs(np.cumsum(2 * arms[keys == key] - 1)).max() <= result.worst_case_stratum


@pytest.mark.parametrize("ratio, p", [((1, 1), 1.0), ((1, 2), 1.0), ((2, 3), 1.0), ((1, 2), 0.8)])
def test_biased_coin_worst_case_matches_the_reachable_states(make_protocol, ratio, p):
    # breadth-first search over reachable counts, using the engine's own probabilities
    n = 25
    protocol = make_protocol("biased_coin", ratio, probability=p)
    states, worst = {(0, 0)}, 0.0
    for _ in range(n):
        nxt = set()
        for n0, n1 in states:
            probs = engines.biased_coin_probabilities((n0, n1), ratio, p)
            nxt |= {(n0 + 1, n1)} if probs[0] > 0 else set()
            nxt |= {(n0, n1 + 1)} if probs[1] > 0 else set()
        states = nxt
        worst = max(worst, max(imbalance_of(s, ratio) for s in states))
    result = metrics.imbalance(protocol, n=n, n_simulations=50, rng=0)
    assert result.worst_case == pytest.approx(worst, abs=EXACT)


def test_imbalance_reports_every_factor_level(make_protocol):
    protocol = make_protocol("minimisation", (1, 1))
    result = metrics.imbalance(protocol, n=90, n_simulations=200, rng=3)
    assert list(result.factor_level) == ["site=a", "site=b", "site=c", "sex=f", "sex=m"]
    assert result.expected_max_factor_level >= max(result.factor_level.values())
    assert result.expected_max >= result.expected_final
    assert result.expected_max_stratum is None


def test_minimisation_balances_factor_levels_better_than_blocks(make_protocol):
    # the point of minimisation: marginal balance within factor levels
    n, sims = 120, 400
    minimised = metrics.imbalance(make_protocol("minimisation"), n=n, n_simulations=sims, rng=6)
    blocks = metrics.imbalance(make_protocol("blocks", block_sizes=[2, 4]), n=n, n_simulations=sims, rng=6)
    assert minimised.expected_max_factor_level < 0.5 * blocks.expected_max_factor_level


def test_minimisation_simulations_scale_down_and_say_so(make_protocol, monkeypatch):
    monkeypatch.setattr(metrics, "_SIMULATION_BUDGET", 20_000)
    result = metrics.imbalance(make_protocol("minimisation"), n=50, n_simulations=2000, rng=0)
    assert result.n_simulations == 200  # 20,000 / (50 referrals x 2 factors)
    assert "200 simulated trials" in result.note


# -------------------------------------------------------------------- design check
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_design_check_runs_on_every_example(path):
    protocol = Protocol.from_toml(path)
    report = metrics.design_check(protocol, rng=2024, n_simulations=300)
    assert report.n == min(protocol.randomisation.capacity, 500)
    assert report.n_sequences == len(protocol.sequence_keys())
    data = report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    text = report.format()
    assert protocol.id in text and protocol.randomisation.method in text
    chance = 1 / len(protocol.arms)
    assert chance <= report.predictability.correct_guess_probability <= 1
    assert report == metrics.design_check(protocol, rng=2024, n_simulations=300)  # reproducible


@pytest.mark.parametrize("method, params", [("simple", {}), ("blocks", {"block_sizes": [4]}), ("biased_coin", {})])
def test_design_check_without_strata(make_protocol, method, params):
    protocol = make_protocol(method, (1, 1), strata={}, capacity=80, **params)
    report = metrics.design_check(protocol, n_simulations=100, rng=0)
    assert report.n == 80
    assert report.imbalance.factor_level == {} and report.imbalance.expected_max_factor_level is None
    assert "factor level" not in report.format()
    json.dumps(report.to_dict(), allow_nan=False)


def test_design_check_uses_exact_values_where_it_can():
    protocol = Protocol.from_toml(next(p for p in EXAMPLES if "london" in p.stem))
    report = metrics.design_check(protocol, n=100, n_simulations=100, rng=0)
    assert report.predictability.method == "exact"
    assert report.predictability == metrics.predictability(protocol, n=100)
    assert report.long_run_predictability == metrics.predictability(protocol)


# ------------------------------------------------------------------- bad arguments
BAD_ARGUMENTS = {
    "n zero": (lambda p: metrics.predictability(p, n=0), "n must be a positive integer"),
    "n not an integer": (lambda p: metrics.imbalance(p, n=2.5), "n must be a positive integer"),
    "one simulation": (lambda p: metrics.imbalance(p, n=10, n_simulations=1), "at least 2"),
    "unknown computation": (
        lambda p: metrics.predictability(p, computation="analytic"),
        "auto, exact, simulation",
    ),
    "unknown factor": (
        lambda p: metrics.imbalance(p, n=10, strata_probabilities={"age": [1, 1]}),
        "not factors of the protocol",
    ),
    "wrong number of levels": (
        lambda p: metrics.imbalance(p, n=10, strata_probabilities={"site": [1, 1]}),
        "one per level",
    ),
    "negative probability": (
        lambda p: metrics.imbalance(p, n=10, strata_probabilities={"sex": [-1, 2]}),
        "non-negative",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS), ids=list(BAD_ARGUMENTS))
def test_bad_arguments_raise_value_error(make_protocol, case):
    call, message = BAD_ARGUMENTS[case]
    with pytest.raises(ValueError, match=message):
        call(make_protocol("blocks", block_sizes=[2]))


def test_no_exact_value_for_minimisation(make_protocol):
    protocol = make_protocol("minimisation")
    with pytest.raises(ValueError, match="no exact predictability"):
        metrics.predictability(protocol, n=10, computation="exact")
    with pytest.raises(ValueError, match="give the trial size n"):
        metrics.predictability(protocol)


# ------------------------------------------------------------- shared sequences across sites
@pytest.mark.parametrize(
    "method, options, warned",
    [
        ("blocks", {"block_sizes": [2, 4]}, True),
        ("stratified_blocks", {"block_sizes": [2, 4], "stratify_by": ["sex"]}, True),
        ("stratified_blocks", {"block_sizes": [2, 4], "stratify_by": ["site", "sex"]}, False),
        ("biased_coin", {}, True),
        ("minimisation", {}, True),
        ("simple", {}, False),
    ],
    ids=["blocks", "stratified_not_by_site", "stratified_by_site", "biased_coin", "minimisation", "simple"],
)
def test_design_check_warns_when_one_sequence_is_shared_across_sites(make_protocol, method, options, warned):
    report = metrics.design_check(make_protocol(method, **options), n=60, n_simulations=50, rng=1)
    assert bool(report.warnings) is warned
    if warned:
        (warning,) = report.warnings
        assert "shared by the 3 sites (a, b, c)" in warning and "per-site numbers" in warning
        assert f"Warning: {warning}" in report.format()
        assert report.to_dict()["warnings"] == [warning]


def test_design_check_does_not_warn_for_one_site(make_protocol):
    protocol = make_protocol("blocks", strata={"site": ["only"], "sex": ["f", "m"]}, block_sizes=[2, 4])
    assert metrics.design_check(protocol, n=40, n_simulations=50, rng=1).warnings == ()
