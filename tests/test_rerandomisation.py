"""Re-randomisation tests (rjtrial/rerandomisation/).

The re-randomised allocations must be draws of the trial's own design (the engines'
exact draws for the adaptive methods, the engines' law for permuted blocks); the
observed statistics must agree with lifelines, statsmodels and scipy computed here;
the p-values must be uniform under the null and agree with the asymptotic log-rank
p-value on a larger trial; a follow-up table that does not match the registry must
give one clear DataError.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines.statistics import logrank_test
from scipy import stats
from statsmodels.stats.weightstats import ttest_ind

from rjtrial.errors import DataError
from rjtrial.protocol import Protocol
from rjtrial.randomise.schedule import allocate_cohort
from rjtrial.registry import Registry
from rjtrial.rerandomisation import (
    CHUNK_SIZE,
    design_allocations,
    rerandomise,
)
from rjtrial.simulate import simulate_trial

LONDON = "synthetic/jrc-london-burglary.toml"
MULTISITE = "synthetic/jrc-multisite.toml"
LONDON_PROTOCOL = "synthetic/protocols/jrc-london-burglary.toml"
MINIMISATION_PROTOCOL = "synthetic/protocols/jrc-multisite-minimisation.toml"
EXACT = 1e-10  # the same quantity computed by another route
Z = 4.0  # Monte Carlo agreement: within four standard errors (fixed seeds)


def _from_registry(db):
    """The protocol and participants a command reads from the registry (statistics never open it)."""
    from rjtrial.registry import Registry

    with Registry.open(db) as registry:
        return registry.protocol, registry.participants()


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def london(tmp_path_factory):
    """A small stratified-blocks trial enrolled through a real registry."""
    folder = tmp_path_factory.mktemp("london")
    trial = simulate_trial(LONDON, rng=11, registry=folder, truth=False, overrides={"referrals.randomised": 120})
    return folder / "trial.db", trial.followup()


@pytest.fixture(scope="module")
def multisite(tmp_path_factory):
    """A small minimisation trial (2:1, three factors) enrolled through a real registry."""
    folder = tmp_path_factory.mktemp("multisite")
    trial = simulate_trial(MULTISITE, rng=5, registry=folder, truth=False, overrides={"referrals.randomised": 150})
    return folder / "trial.db", trial.followup()


def random_strata(protocol: Protocol, n: int, seed: int) -> list[dict]:
    gen = np.random.default_rng(seed)
    return [{name: str(gen.choice(levels)) for name, levels in protocol.strata.items()} for _ in range(n)]


def child_generator(root: int, chunk: int, j: int) -> np.random.Generator:
    """Re-randomisation j of chunk `chunk`, as documented in the module notes."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=(chunk, j))))


# ---------------------------------------------------------- allocations follow the design
@pytest.mark.parametrize(
    "method, ratio, options",
    [
        ("minimisation", (1, 2), {"probability": 0.8, "weights": {"site": 1, "sex": 2}}),
        ("minimisation", (1, 1, 1), {"probability": 0.9, "imbalance": "variance"}),
        ("biased_coin", (1, 1), {"probability": 2 / 3}),
        ("biased_coin", (1, 2), {"probability": 0.75}),
        ("simple", (1, 2), {}),
    ],
)
def test_adaptive_and_simple_rerandomisations_are_the_engines_draws(make_protocol, method, ratio, options):
    protocol = make_protocol(method, ratio, **options)
    rows = random_strata(protocol, 60, seed=1)
    reps = CHUNK_SIZE + 3  # two chunks
    allocations = design_allocations(protocol, rows, reps=reps, rng=7)
    assert allocations.shape == (reps, 60)
    for chunk, j in [(0, 0), (0, 1), (0, CHUNK_SIZE - 1), (1, 0), (1, 2)]:
        expected = allocate_cohort(protocol, rows, rng=child_generator(7, chunk, j), draws="generator")
        np.testing.assert_array_equal(allocations[chunk * CHUNK_SIZE + j], expected)


def max_prefix_imbalance(arms: np.ndarray, ratio) -> int:
    """Largest |n_0 r_1 - n_1 r_0| over the prefixes of the rows (0 when on the ratio)."""
    n0 = np.cumsum(arms == 0, axis=1)
    n1 = np.cumsum(arms == 1, axis=1)
    return int(np.abs(n0 * ratio[1] - n1 * ratio[0]).max())


@pytest.mark.parametrize("ratio, sizes", [((1, 1), [2, 4, 6]), ((1, 2), [3, 6])])
def test_stratified_blocks_are_balanced_within_every_stratum(make_protocol, ratio, sizes):
    protocol = make_protocol("stratified_blocks", ratio, block_sizes=sizes)
    rows = random_strata(protocol, 150, seed=2)
    allocations = design_allocations(protocol, rows, reps=400, rng=3)
    keys = np.array([protocol.sequence_key(r) for r in rows])
    worst = max(max_prefix_imbalance(allocations[:, keys == key], ratio) for key in np.unique(keys))
    # the largest block (c copies of the ratio) drifts furthest when one arm comes first: c r_0 r_1
    assert worst == max(sizes) // sum(ratio) * ratio[0] * ratio[1]
    # the strata are not pooled: the whole trial drifts further
    assert max_prefix_imbalance(allocations, ratio) > worst
    # and their sequences are independent: the first referrals of two strata agree with
    # probability sum_k share_k**2
    first = [int(np.flatnonzero(keys == key)[0]) for key in np.unique(keys)[:2]]
    agree = np.mean(allocations[:, first[0]] == allocations[:, first[1]])
    share = np.asarray(ratio) / sum(ratio)
    expected = float(np.sum(share**2))
    assert abs(agree - expected) < Z * math.sqrt(expected * (1 - expected) / len(allocations))


def test_stratified_blocks_have_the_law_of_the_engine():
    """Final imbalance of each stratum: the vectorised draws and allocate_cohort agree in law."""
    protocol = Protocol.from_toml(LONDON_PROTOCOL)
    rows = random_strata(protocol, 60, seed=4)
    keys = np.array([protocol.sequence_key(r) for r in rows])
    draws = 400

    def imbalances(allocations):
        return np.concatenate([(2 * allocations[:, keys == k] - 1).sum(axis=1) for k in np.unique(keys)])

    ours = imbalances(design_allocations(protocol, rows, reps=draws, rng=5).astype(int))
    engine = imbalances(np.array([allocate_cohort(protocol, rows, rng=1000 + i) for i in range(draws)]))
    values = np.union1d(ours, engine)
    table = np.array([[np.sum(ours == v) for v in values], [np.sum(engine == v) for v in values]])
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_rerandomisations_of_the_registry_trial_keep_its_strata_and_order(multisite):
    db, followup = multisite
    with Registry.open(db) as reg:
        people = reg.export()
        protocol = reg.protocol
    result = rerandomise(*_from_registry(db), followup, reps=50, rng=1)
    assert result.design["method"] == "minimisation"
    assert result.design["strata"] == list(protocol.randomisation.factors)
    assert result.design["randomised_by_arm"] == people["arm"].value_counts().to_dict()
    # the same engine on the registry's participants, in enrolment order, gives the same first draw
    rows = people.sort_values("sequence_number")[list(protocol.strata)].to_dict("records")
    first = design_allocations(protocol, rows, reps=1, rng=1)[0]
    np.testing.assert_array_equal(
        first, allocate_cohort(protocol, rows, rng=child_generator(1, 0, 0), draws="generator")
    )


def test_the_compiled_minimisation_gives_the_registry_arms_from_its_revealed_draws(multisite):
    """Draw for draw: the kernel the re-randomisation test compiles, fed the registry's own
    keyed draws (revealed in its records), gives every arm the registry gave."""
    import json
    import sqlite3

    from rjtrial.randomise.compiled import minimisation_kernel
    from rjtrial.rerandomisation._design import _design

    db, _ = multisite
    with Registry.open(db) as reg:
        protocol = reg.protocol
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT strata, arm, value FROM rj_referrals WHERE sequence_number IS NOT NULL ORDER BY sequence_number"
        ).fetchall()
    strata = [json.loads(r[0]) for r in rows]
    draws = np.array([[float.fromhex(r[2]) for r in rows]])
    spec = protocol.randomisation
    design = _design(protocol, strata)
    arms = minimisation_kernel()(
        design.levels[None],
        max(len(protocol.strata[f]) for f in spec.factors),
        np.asarray(protocol.ratio, dtype=float),
        np.asarray(spec.weights, dtype=float),
        float(spec.probability),
        spec.imbalance == "variance",
        draws,
    )
    assert [protocol.arms[a] for a in arms[0]] == [r[1] for r in rows]
    assert len(rows) == 150


# ------------------------------------------------------------- observed statistics agree
def test_logrank_agrees_with_lifelines(london):
    db, followup = london
    result = rerandomise(*_from_registry(db), followup, statistic="logrank", reps=200, rng=2)
    treated = followup["arm"] == "conference"
    ref = logrank_test(
        followup.time_at_risk[treated],
        followup.time_at_risk[~treated],
        followup.event[treated],
        followup.event[~treated],
    )
    assert result.observed**2 == pytest.approx(ref.test_statistic, rel=EXACT)
    assert result.asymptotic_p_value == pytest.approx(ref.p_value, rel=EXACT)
    # sign: positive when the second arm (conference) has more events than expected
    times = np.sort(followup.time_at_risk.unique())
    o_minus_e = 0.0
    for t in times[np.isin(times, followup.time_at_risk[followup.event.astype(bool)])]:
        at_risk = followup.time_at_risk >= t
        dead = (followup.time_at_risk == t) & followup.event.astype(bool)
        o_minus_e += (dead & treated).sum() - dead.sum() * (at_risk & treated).sum() / at_risk.sum()
    assert math.copysign(1.0, result.observed) == math.copysign(1.0, o_minus_e)


def test_rate_agrees_with_statsmodels_robust_poisson(london):
    db, followup = london
    result = rerandomise(*_from_registry(db), followup, statistic="rate", reps=200, rng=2)
    sums = followup.groupby("arm")[["reoffences", "exposure_days"]].sum()
    rates = sums.reoffences / sums.exposure_days
    assert result.observed == pytest.approx(math.log(rates["conference"] / rates["control"]), rel=EXACT)
    used = followup[followup.exposure_days > 0]
    assert (followup.loc[followup.exposure_days == 0, "reoffences"] == 0).all()  # nothing dropped that counts
    X = sm.add_constant((used.arm == "conference").astype(float).to_numpy())
    fit = sm.GLM(
        used.reoffences.to_numpy(), X, family=sm.families.Poisson(), offset=np.log(used.exposure_days.to_numpy())
    ).fit(cov_type="HC0", tol=1e-12)
    assert result.observed == pytest.approx(fit.params[1], rel=1e-8)
    assert result.asymptotic_p_value == pytest.approx(fit.pvalues[1], rel=1e-6)


def test_prevalence_agrees_with_pearson_chi_square(london):
    db, followup = london
    result = rerandomise(*_from_registry(db), followup, statistic="prevalence", reps=200, rng=2)
    share = followup.groupby("arm")["event"].mean()
    assert result.observed == pytest.approx(share["conference"] - share["control"], rel=EXACT)
    table = pd.crosstab(followup.arm, followup.event).to_numpy()
    assert result.asymptotic_p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9)


def test_mean_agrees_with_statsmodels_welch(london):
    db, followup = london
    result = rerandomise(*_from_registry(db), followup, statistic="mean:prior_offences", reps=200, rng=2)
    treated = followup.arm == "conference"
    y = followup.prior_offences.astype(float)
    assert result.observed == pytest.approx(y[treated].mean() - y[~treated].mean(), rel=EXACT)
    assert result.asymptotic_p_value == pytest.approx(ttest_ind(y[treated], y[~treated], usevar="unequal")[1], rel=1e-9)


def test_callable_statistic_sees_the_followup_rows_in_their_order(london):
    """Shuffled follow-up rows: a callable difference in means gives the built-in's null distribution."""
    db, followup = london
    shuffled = followup.sample(frac=1.0, random_state=3).reset_index(drop=True)
    y = shuffled["reoffences"].to_numpy(dtype=float)

    def difference(arms):
        return y[arms == 1].mean() - y[arms == 0].mean()

    custom = rerandomise(*_from_registry(db), shuffled, statistic=difference, reps=300, rng=4)
    builtin = rerandomise(*_from_registry(db), followup, statistic="mean:reoffences", reps=300, rng=4)
    assert custom.observed == pytest.approx(builtin.observed, rel=EXACT)
    np.testing.assert_allclose(custom.null_distribution, builtin.null_distribution, rtol=EXACT)
    assert custom.p_value == builtin.p_value
    assert custom.asymptotic_p_value is None and custom.statistic == "difference"


@pytest.mark.parametrize("statistic", ["logrank", "prevalence"])  # prevalence: a discrete statistic, many ties
def test_p_value_counts_the_observed_allocation(london, statistic):
    """Phipson & Smyth (2010): p = (1 + b) / (1 + R), b = #{|T*| >= |T_obs|}, ties included."""
    db, followup = london
    result = rerandomise(*_from_registry(db), followup, statistic=statistic, reps=999, rng=8)
    if statistic == "prevalence":  # T* in exact rational arithmetic, so that ties are ties
        with Registry.open(db) as reg:
            people = reg.export().sort_values("sequence_number")
            protocol = reg.protocol
        allocations = design_allocations(protocol, people[list(protocol.strata)].to_dict("records"), reps=999, rng=8)
        event = followup.set_index("id").loc[people["id"], "event"].to_numpy(dtype=int)

        def difference(x):
            n1 = int(x.sum())
            return Fraction(int(event[x == 1].sum()), n1) - Fraction(int(event[x == 0].sum()), len(x) - n1)

        null = [abs(difference(row)) for row in allocations]
        observed = abs(difference((people["arm"] == "conference").to_numpy(dtype=int)))
        np.testing.assert_allclose(np.abs(result.null_distribution), np.array(null, dtype=float), rtol=EXACT)
        b = sum(t >= observed for t in null)
        assert b > sum(t > observed for t in null)  # there are ties to count
    else:
        b = int(np.sum(np.abs(result.null_distribution) >= abs(result.observed)))
    assert result.extreme == b
    assert result.p_value == (1 + b) / 1000
    assert result.mc_std_error == pytest.approx(math.sqrt(result.p_value * (1 - result.p_value) / 999), rel=EXACT)
    assert result.null_distribution.shape == (999,)
    data = result.to_dict()
    assert data["p_value"] == result.p_value and data["reps"] == 999 and data["seed"] == "8"


# ------------------------------------------------------------------------ reproducibility
def test_same_seed_same_result_whatever_the_workers(london):
    db, followup = london
    reps = 2 * CHUNK_SIZE + 17
    one = rerandomise(*_from_registry(db), followup, reps=reps, rng=21)
    two = rerandomise(*_from_registry(db), followup, reps=reps, rng=21, workers=2)
    np.testing.assert_array_equal(one.null_distribution, two.null_distribution)
    assert one == two
    other = rerandomise(*_from_registry(db), followup, reps=reps, rng=22)
    assert not np.array_equal(one.null_distribution, other.null_distribution)


def test_a_generator_seed_is_recorded_and_reproduces_the_result(multisite):
    db, followup = multisite
    first = rerandomise(*_from_registry(db), followup, reps=120, rng=np.random.default_rng(5))
    again = rerandomise(*_from_registry(db), followup, reps=120, rng=first.seed)
    np.testing.assert_array_equal(first.null_distribution, again.null_distribution)


# ------------------------------------------------------------------------------ validity
def null_p_values(protocol: Protocol, n: int, replicates: int) -> np.ndarray:
    """p-values of trials whose allocation is a fresh draw of the design and whose
    outcomes do not depend on it (the sharp null)."""
    gen = np.random.default_rng(99)
    p = np.empty(replicates)
    for i in range(replicates):
        rows = random_strata(protocol, n, seed=10_000 + i)
        arms = allocate_cohort(protocol, rows, rng=i)
        participants = pd.DataFrame(rows).assign(
            id=[f"P{k}" for k in range(n)], arm=np.asarray(protocol.arms)[arms], sequence_number=np.arange(1, n + 1)
        )
        # outcomes depend on the first stratum (prognostic) but not on the arm
        factor, levels = next(iter(protocol.strata.items()))
        hazard = np.where(participants[factor] == levels[0], 1.0, 2.5)
        event_time = gen.exponential(1.0 / hazard)
        censor = gen.uniform(0.2, 1.5, n)
        followup = participants[["id"]].assign(time_at_risk=np.minimum(event_time, censor), event=event_time <= censor)
        p[i] = rerandomise(protocol, participants, followup, reps=99, rng=i).p_value
    return p


@pytest.mark.parametrize(
    "path, n, replicates",
    [
        (LONDON_PROTOCOL, 60, 200),
        (MINIMISATION_PROTOCOL, 30, 120),
        ("synthetic/protocols/sheffield-magistrates-biased-coin.toml", 40, 200),
    ],
)
def test_p_values_are_uniform_under_the_null(path, n, replicates):
    p = null_p_values(Protocol.from_toml(path), n, replicates=replicates)
    # p takes the values k/100; under the null P(p <= k/100) = k/100 exactly
    assert stats.kstest(p, "uniform").pvalue > 0.001
    assert abs(np.mean(p <= 0.1) - 0.1) < Z * math.sqrt(0.1 * 0.9 / replicates)


def test_randomisation_p_agrees_with_the_asymptotic_logrank_on_a_larger_trial():
    trial = simulate_trial(LONDON, rng=3, truth=False, overrides={"referrals.randomised": 600})
    result = rerandomise(trial.scenario.protocol, trial.participants, trial.followup(), reps=5000, rng=1)
    assert result.design["n"] == 600
    assert abs(result.p_value - result.asymptotic_p_value) <= Z * result.mc_std_error


def test_randomisation_p_agrees_with_the_asymptotic_logrank_under_minimisation():
    trial = simulate_trial(MULTISITE, rng=3, truth=False, overrides={"referrals.randomised": 400})
    result = rerandomise(trial.scenario.protocol, trial.participants, trial.followup(), reps=3000, rng=1)
    assert result.design["method"] == "minimisation"
    assert abs(result.p_value - result.asymptotic_p_value) <= Z * result.mc_std_error


# ------------------------------------------------------------- the follow-up must match
def followup_cases(followup: pd.DataFrame):
    dropped = followup.drop(index=5).reset_index(drop=True)
    duplicated = pd.concat([followup, followup.iloc[[7]]], ignore_index=True)
    foreign = followup.copy()
    foreign.loc[16, "id"] = "R-999999"
    swapped = followup.copy()
    swapped.loc[3, "arm"] = "control" if followup.loc[3, "arm"] == "conference" else "conference"
    blank = followup.copy()
    blank.loc[9, "id"] = None
    return {
        "missing participant": (dropped, None, "id", followup.loc[5, "id"], "intention to treat"),
        "duplicate": (duplicated, len(followup) + 1, "id", followup.loc[7, "id"], "more than once (first at row 8)"),
        "not randomised": (
            foreign,
            17,
            "id",
            "R-999999",
            "is not a randomised participant of trial jrc-london-burglary",
        ),
        "arm differs": (swapped, 4, "arm", followup.loc[3, "id"], "differs from the arm randomised"),
        "missing id": (blank, 10, "id", "", "missing"),
    }


@pytest.mark.parametrize("case", ["missing participant", "duplicate", "not randomised", "arm differs", "missing id"])
def test_a_followup_that_does_not_match_the_registry_is_one_clear_error(london, case):
    db, followup = london
    table, row, column, pid, words = followup_cases(followup)[case]
    with pytest.raises(DataError) as info:
        rerandomise(*_from_registry(db), table, reps=10, rng=1)
    err = info.value
    assert (err.table, err.row, err.column) == ("followup", row, column)
    assert pid in str(err) and words in str(err)
    assert "\n" not in str(err)


def test_withdrawn_participants_stay_in_the_analysis(tmp_path):
    trial = simulate_trial(LONDON, rng=12, registry=tmp_path, truth=False, overrides={"referrals.randomised": 40})
    followup = trial.followup()
    who = followup["id"].iloc[2]
    with Registry.open(tmp_path / "trial.db", key_path=tmp_path / "trial.key") as reg:
        reg.record_event(who, "withdrawal", by="test")
    result = rerandomise(*_from_registry(tmp_path / "trial.db"), followup, reps=20, rng=1)
    assert result.design["n"] == 40
    with pytest.raises(DataError, match=f"{who} of trial jrc-london-burglary is missing"):
        rerandomise(*_from_registry(tmp_path / "trial.db"), followup[followup.id != who], reps=20, rng=1)


# ------------------------------------------------------------------------------ bad input
def test_a_custom_statistic_runs_on_several_threads_with_the_same_result(london):
    """Workers are threads: a lambda (which no process pool could take) is called from
    each, and the null distribution is the one a single thread gives."""
    db, followup = london
    treated_events = lambda arms: float(np.sum(followup["event"].to_numpy()[arms == 1]))  # noqa: E731
    one = rerandomise(*_from_registry(db), followup, statistic=treated_events, reps=CHUNK_SIZE + 5, rng=4, workers=1)
    two = rerandomise(*_from_registry(db), followup, statistic=treated_events, reps=CHUNK_SIZE + 5, rng=4, workers=2)
    np.testing.assert_array_equal(one.null_distribution, two.null_distribution)
    assert np.unique(one.null_distribution).size > 1


@pytest.mark.parametrize(
    "options, error, words",
    [
        ({"statistic": "hazard"}, ValueError, "statistic must be one of"),
        ({"statistic": "mean:"}, ValueError, "needs a column name"),
        ({"statistic": "mean:nothere"}, DataError, "no column 'nothere'"),
        ({"statistic": "mean:sex"}, DataError, "must be numeric"),
        ({"reps": 0}, ValueError, "reps must be"),
        ({"reps": 2.5}, ValueError, "reps must be"),
        ({"rng": -1}, ValueError, "rng must be"),
        ({"workers": 0}, ValueError, "workers must be"),
    ],
)
def test_bad_options_raise_clear_errors(london, options, error, words):
    db, followup = london
    kwargs = {"reps": 10, "rng": 1, **options}
    with pytest.raises(error, match=words):
        rerandomise(*_from_registry(db), followup, **kwargs)


def test_bad_outcome_values_name_the_row(london):
    db, followup = london
    bad = followup.copy()
    bad.loc[6, "time_at_risk"] = -3
    with pytest.raises(DataError) as info:
        rerandomise(*_from_registry(db), bad, reps=10, rng=1)
    assert (info.value.row, info.value.column) == (7, "time_at_risk")
    no_events = followup.assign(event=False)
    with pytest.raises(DataError, match="no events"):
        rerandomise(*_from_registry(db), no_events, reps=10, rng=1)


def test_rng_is_required(london):
    db, followup = london
    with pytest.raises(TypeError):
        rerandomise(*_from_registry(db), followup, reps=10)


def test_built_in_statistics_need_two_arms(make_protocol):
    protocol = make_protocol("simple", (1, 1, 1))
    rows = random_strata(protocol, 30, seed=1)
    arms = np.arange(30) % 3
    participants = pd.DataFrame(rows).assign(
        id=[f"P{i}" for i in range(30)], arm=np.asarray(protocol.arms)[arms], sequence_number=np.arange(1, 31)
    )
    followup = participants[["id"]].assign(time_at_risk=np.arange(1.0, 31.0), event=arms == 0)
    with pytest.raises(ValueError, match="compares two arms; this trial has 3"):
        rerandomise(protocol, participants, followup, reps=10, rng=1)
    # a callable handles any number of arms
    y = np.arange(30.0)
    result = rerandomise(
        protocol, participants, followup, statistic=lambda a: y[a == 2].mean() - y[a == 0].mean(), reps=50, rng=1
    )
    assert result.observed == pytest.approx(y[arms == 2].mean() - y[arms == 0].mean())
