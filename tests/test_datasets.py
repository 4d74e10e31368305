"""rjtrial.datasets: bundled data with provenance."""

from __future__ import annotations

import pytest

from rjtrial import datasets, effects
from rjtrial.meta import pool


def test_bcg_is_metadat_dat_bcg():
    bcg = datasets.load_bcg()
    assert bcg.shape == (13, 9)
    assert list(bcg.columns) == ["trial", "author", "year", "tpos", "tneg", "cpos", "cneg", "ablat", "alloc"]
    assert set(bcg.alloc) == {"random", "alternate", "systematic"}
    # metadat dat.bcg, row 1 (Aronson 1948) and row 13 (Comstock et al 1976)
    assert bcg.iloc[0][["tpos", "tneg", "cpos", "cneg"]].tolist() == [4, 119, 11, 128]
    assert bcg.iloc[12][["tpos", "tneg", "cpos", "cneg"]].tolist() == [27, 16886, 29, 17825]


def test_bcg_reproduces_the_textbook_reml_fit():
    # R: rma(yi, vi, data = escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg))
    bcg = datasets.load_bcg()
    es = effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
    )
    res = pool(es, method="REML")
    assert (round(res.estimate, 4), round(res.tau2, 4), round(res.i2, 2)) == (-0.7145, 0.3132, 92.22)


def test_rj_trials_hold_only_sourced_figures():
    trials = datasets.load_rj_trials()
    assert list(trials.columns) == ["trial", "location", "n_offenders"]  # no effect sizes
    assert len(trials) == 10
    # shared/DOMAIN.md, Cambridge presentation by H. Strang
    sizes = dict(zip(trials.trial, trials.n_offenders))
    assert sizes["Canberra violence"] == 121 and sizes["Indianapolis"] == 782
    assert sizes["UK magistrates' assault"] == 44
    assert trials.n_offenders.sum() == 1927
    assert trials.location.value_counts().to_dict() == {"UK": 6, "Canberra": 3, "Indianapolis": 1}


def test_rj_pooled_record():
    pooled = datasets.load_rj_pooled().set_index("outcome")
    row = pooled.loc["repeat-conviction frequency"]
    # Strang et al. 2013 (Campbell review); Sherman et al. 2015: d = -0.155, p = .001, 10 RCTs, 1,880 offenders
    assert (row.estimate, row.p_value, row.k, row.n_offenders) == (-0.155, 0.001, 10, 1880)
    assert "10.4073/csr.2013.12" in row.source
    assert pooled.loc["victim satisfaction", "estimate"] == 0.327


@pytest.mark.parametrize("loader", [datasets.load_bcg, datasets.load_rj_trials, datasets.load_rj_pooled])
def test_loaders_document_source_size_and_columns(loader):
    doc = loader.__doc__
    assert "Source" in doc and "Size" in doc and "Columns" in doc
    frame = loader()
    assert f"{len(frame)} rows" in doc
    for column in frame.columns:
        assert column in doc


def test_docstring_examples_run():
    import doctest

    import rjtrial.datasets as module

    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
