"""Group-sequential designs and interim looks (rjtrial.monitor) against R rpact 3.3.4.

Twelve designs (2 to 5 looks; O'Brien-Fleming, Pocock, Hwang-Shih-DeCani gamma -4/-2/1 and
Kim-DeMets alpha spending; with and without futility, binding and non-binding; equal and unequal
information fractions; 1:1, 3:2 and 2:1 allocation), eight looks at information fractions other
than the planned ones (a final look spending all the alpha before the maximum), and Rossi et al.'s
released prisoners (tests/reference/rossi.csv: 432 men, weeks to arrest) analysed at week 26 and at
week 52 under a two-look design, the log-rank statistics computed here from the data.

Reference numbers: tests/reference/rpact_group_sequential.R (rpact tolerance 1e-10; the R call is
beside each assertion). Observed agreement: boundaries 3.3e-8 (rpact's own integration error:
ours changes by less than 1e-15 when its grid is refined, tests/test_monitor_design.py), alpha
spent 1e-8 (rpact floors the last look's to 1e-8), other probabilities 8e-9, events 1.3e-8
relative, hazard ratios and repeated confidence intervals 2.2e-9, conditional power 7.6e-9.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.monitor import design, look

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REFERENCE / "rpact_group_sequential.json").read_text())
DESIGNS = REF["designs"]
LOOKS = REF["looks"]
TOL = {
    "boundary": {"abs": 1e-7, "rel": 0},  # critical values and futility bounds on the z scale
    "probability": {"abs": 1e-7, "rel": 0},  # alpha and beta spent, power, stopping probabilities, conditional power
    "events": {"abs": 0, "rel": 1e-7},  # maximum, per-look and expected numbers of events
    "ratio": {"abs": 1e-7, "rel": 0},  # hazard ratios: boundaries, estimates, repeated confidence intervals
}


def close(got, expected, kind):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOL[kind]["abs"], rtol=TOL[kind]["rel"])


@pytest.fixture(scope="module")
def designs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: design(**case["settings"]) for name, case in DESIGNS.items()}


# ------------------------------------------------------------------------------------ designs
@pytest.mark.parametrize("name", list(DESIGNS))
def test_boundaries(name, designs):
    d, ref = designs[name], DESIGNS[name]
    frame = d.summary_frame()
    # R: getDesignGroupSequential(kMax, alpha, beta, sided, typeOfDesign, gammaA, informationRates, tolerance = 1e-10)$criticalValues
    close(d.critical_values, ref["critical_values"], "boundary")
    # R: getDesignGroupSequential(...)$stageLevels
    close(frame["nominal_p"], ref["stage_levels"], "probability")
    if ref["futility_bounds"] is None:
        assert d.futility_bounds is None
    else:
        # R: getDesignGroupSequential(..., typeBetaSpending, gammaB, bindingFutility)$futilityBounds
        close(d.futility_bounds, ref["futility_bounds"], "boundary")


@pytest.mark.parametrize("name", list(DESIGNS))
def test_spending_and_power(name, designs):
    d, ref = designs[name], DESIGNS[name]
    # R: getDesignGroupSequential(...)$alphaSpent
    close(d.alpha_spent, ref["alpha_spent"], "probability")
    # R: getDesignCharacteristics(design)$power
    close(d.power_by_look, ref["power"], "probability")
    # R: getDesignCharacteristics(design)$rejectionProbabilities
    close(np.diff(np.concatenate([[0.0], d.power_by_look])), ref["rejection_probabilities"], "probability")
    if ref["futility_bounds"] is not None:
        # R: getDesignGroupSequential(...)$betaSpent
        close(d.beta_spent, ref["beta_spent"], "probability")
        # R: getDesignCharacteristics(design)$futilityProbabilities
        close(d.futility_by_look[:-1], ref["futility_probabilities"], "probability")
    # R: getDesignCharacteristics(design)$inflationFactor
    close(d.inflation_factor, ref["inflation_factor"], "events")
    # R: getDesignCharacteristics(design)$shift
    close(d.drift**2, ref["shift"], "events")


@pytest.mark.parametrize("name", list(DESIGNS))
def test_events(name, designs):
    d, ref = designs[name], DESIGNS[name]
    # R: getSampleSizeSurvival(design, hazardRatio, allocationRatioPlanned, ...)$maxNumberOfEvents
    close(d.max_events, ref["max_events"], "events")
    # R: getSampleSizeSurvival(...)$eventsPerStage
    close(d.events, ref["events_per_stage"], "events")
    # R: getSampleSizeSurvival(...)$expectedEventsH0
    close(d.expected_events_null, ref["expected_events_h0"], "events")
    # R: getSampleSizeSurvival(...)$expectedEventsH01
    close(d.expected_events_half, ref["expected_events_h01"], "events")
    # R: getSampleSizeSurvival(...)$expectedEventsH1
    close(d.expected_events_alternative, ref["expected_events_h1"], "events")


@pytest.mark.parametrize("name", [n for n, case in DESIGNS.items() if case["critical_effect_scale"]])
def test_boundaries_as_hazard_ratios(name, designs):
    frame, ref = designs[name].summary_frame(), DESIGNS[name]
    # R: getSampleSizeSurvival(...)$criticalValuesEffectScale
    close(frame["efficacy_hazard_ratio"], ref["critical_effect_scale"], "ratio")
    if ref["futility_effect_scale"] is not None:
        # R: getSampleSizeSurvival(...)$futilityBoundsEffectScale
        close(frame["futility_hazard_ratio"][:-1], ref["futility_effect_scale"], "ratio")


# -------------------------------------------------------------------------------------- looks
def _look(d, case):
    events = list(np.atleast_1d(case["events"]).astype(int))
    statistic = list(np.atleast_1d(case["statistic"]).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return look(d, events=events[-1], statistic=statistic[-1], previous_events=events[:-1], final=case["final"])


@pytest.mark.parametrize("name", list(LOOKS))
def test_look_boundaries_at_the_information_reached(name, designs):
    case = LOOKS[name]
    frame = _look(designs[case["design"]], case).boundaries_frame()
    # R: getDesignGroupSequential(..., informationRates = c(events / maxNumberOfEvents, planned))$criticalValues
    #    (a final look: typeOfDesign = "asUser", userAlphaSpending = c(earlier alphaSpent, alpha))
    close(frame["critical_value"], case["critical_values"], "boundary")
    # R: getDesignGroupSequential(..., informationRates = ...)$alphaSpent
    close(frame["alpha_spent"], case["alpha_spent"], "probability")
    if "futility_bounds" in case:
        # R: uniroot(P(futility at look j) - beta spent there, getGroupSequentialProbabilities(bounds - drift sqrt(t), t))
        close(frame["futility_bound"][:-1], case["futility_bounds"], "boundary")


@pytest.mark.parametrize("name", list(LOOKS))
def test_look_estimate_and_repeated_interval(name, designs):
    case = LOOKS[name]
    result = _look(designs[case["design"]], case)
    # R: getStageResults(design, getDataset(overallEvents, overallLogRanks), directionUpper = FALSE)$effectSizes
    close(result.hazard_ratio, case["effect_size"], "ratio")
    # R: getRepeatedConfidenceIntervals(design, dataInput, directionUpper = FALSE, tolerance = 1e-12)
    close([result.ci_lower, result.ci_upper], case["rci"], "ratio")


@pytest.mark.parametrize("name", [n for n, case in LOOKS.items() if not case["final"]])
def test_look_conditional_power(name, designs):
    case = LOOKS[name]
    result = _look(designs[case["design"]], case)
    # R: getConditionalPower(stageResults, nPlanned = remaining planned events, thetaH1 = hazardRatio)$conditionalPower[kMax]
    close(result.conditional_power_design, case["conditional_power_design"], "probability")
    # R: getConditionalPower(stageResults, nPlanned, thetaH1 = stageResults$effectSizes[k])$conditionalPower[kMax]
    close(result.conditional_power_trend, case["conditional_power_trend"], "probability")


# -------------------------------------------------------------------------------------- rossi
ROSSI = REF["rossi"]


@pytest.fixture(scope="module")
def rossi():
    data = pd.read_csv(REFERENCE / "rossi.csv")
    interim = data.assign(
        week=data["week"].clip(upper=26), arrest=((data["arrest"] == 1) & (data["week"] <= 26)).astype(int)
    )
    return data, interim


def test_rossi_interim_look_from_the_data(designs, rossi):
    _, interim = rossi
    result = look(designs["rossi"], interim, time="week", event="arrest", group="fin", control=0)
    case = ROSSI["interim"]
    # R: survdiff(Surv(pmin(week, 26), arrest & week <= 26) ~ fin, rossi): (obs - exp)[2] / sqrt(var[2, 2])
    close(result.statistic, ROSSI["statistic"][0], "boundary")
    assert result.events == ROSSI["events"][0] and result.n == 432
    # R: getDesignGroupSequential(kMax = 2, alpha = 0.05, sided = 2, typeOfDesign = "asOF", informationRates = c(54 / maxNumberOfEvents, 1))$criticalValues
    close(result.boundaries_frame()["critical_value"], case["critical_values"], "boundary")
    # R: getRepeatedConfidenceIntervals(design, getDataset(overallEvents = 54, overallLogRanks = z), directionUpper = FALSE)
    close([result.ci_lower, result.ci_upper], case["rci"], "ratio")
    # R: getConditionalPower(stageResults, nPlanned = maxNumberOfEvents - 54, thetaH1 = 0.6)$conditionalPower[2]
    close(result.conditional_power_design, case["conditional_power_design"], "probability")
    close(result.conditional_power_trend, case["conditional_power_trend"], "probability")
    assert result.decision == "continue"


def test_rossi_final_look_from_the_data(designs, rossi):
    data, _ = rossi
    result = look(
        designs["rossi"],
        data,
        time="week",
        event="arrest",
        group="fin",
        control=0,
        previous_events=[ROSSI["events"][0]],
        final=True,
    )
    case = ROSSI["final"]
    # R: survdiff(Surv(week, arrest) ~ fin, rossi): (obs - exp)[2] / sqrt(var[2, 2])
    close(result.statistic, ROSSI["statistic"][1], "boundary")
    # R: getDesignGroupSequential(kMax = 2, typeOfDesign = "asUser", userAlphaSpending = c(alphaSpent[1], 0.05), informationRates = c(54, 114) / 114)$criticalValues
    close(result.boundaries_frame()["critical_value"], case["critical_values"], "boundary")
    # R: getRepeatedConfidenceIntervals(design, getDataset(overallEvents = c(54, 114), overallLogRanks = z), stage = 2)
    close([result.ci_lower, result.ci_upper], case["rci"], "ratio")
    # R: getStageResults(...)$effectSizes[2]
    close(result.hazard_ratio, case["effect_size"], "ratio")
    assert result.decision == "no_effect_shown"  # z = -1.959 does not reach the final bound 1.964
