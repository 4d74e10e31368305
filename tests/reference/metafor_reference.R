# Reference numbers for rjtrial.effects and rjtrial.meta, computed with R's metafor.
#
# Run from the repository root (needs r-base-core, r-cran-metafor, r-cran-metadat, jsonlite):
#
#     Rscript tests/reference/metafor_reference.R
#
# Writes  tests/reference/metadat_bcg.csv            (dat.bcg: BCG vaccine, 13 trials, 2x2 counts)
#         tests/reference/metadat_normand1999.csv    (dat.normand1999: stroke care, 9 studies, means/SDs)
#         tests/reference/metadat_collins1985a.csv   (dat.collins1985a: H2 antagonists, 27 trials, 2x2)
#         tests/reference/metadat_pignon2000.csv     (dat.pignon2000: head and neck cancer, 65 trials, O-E and V)
#         tests/reference/metadat_hart1999.csv       (dat.hart1999: warfarin, 6 trials, events/person-years)
#         tests/reference/metafor_reference.json
#
# Every model is fitted with tight settings: rma(..., control = list(threshold = 1e-12,
# tol = 1e-12, maxiter = 10000)) and confint(..., control = list(tol = 1e-12, maxiter = 10000)).
# At metafor's defaults the iterative estimators stop early (Paule-Mandel tau^2 ~1e-5 off).
# Numbers are written by jsonlite with digits = NA (15 significant digits); NA is null.
# The test suite reads the JSON and the CSVs and never needs R.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

here <- "tests/reference"
out_file <- file.path(here, "metafor_reference.json")

CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
CI_CTRL <- list(tol = 1e-12, maxiter = 10000)
RE_METHODS <- c("DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
ALL_METHODS <- c("FE", RE_METHODS)
TESTS <- c("z", "knha")

num <- function(x) as.numeric(unname(x))

# ---- extractors ----------------------------------------------------------------------------
rma_out <- function(res, newmods = NULL) {
  out <- list(
    method = res$method, test = res$test, k = res$k, p = res$p,
    coef_names = rownames(res$beta),
    beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
    ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub), vb = unname(res$vb),
    ddf = num(res$ddf),
    tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
    I2 = num(res$I2), H2 = num(res$H2), vt = num(res$vt),
    QE = num(res$QE), QEp = num(res$QEp), QE_df = res$k - res$p,
    weights = num(weights(res))
  )
  if (!res$int.only) {
    out$QM <- num(res$QM)
    out$QMdf <- num(res$QMdf)
    out$QMp <- num(res$QMp)
    out$R2 <- if (is.null(res$R2)) NA else num(res$R2)
  }
  if (!is.element(res$method, c("FE", "EE"))) {
    ci <- confint(res, control = CI_CTRL)$random
    out$tau2_ci <- num(ci["tau^2", c("ci.lb", "ci.ub")])
    out$I2_ci <- num(ci["I^2(%)", c("ci.lb", "ci.ub")])
    out$H2_ci <- num(ci["H^2", c("ci.lb", "ci.ub")])
  }
  if (res$int.only) {
    pr <- predict(res)
    out$pi_lb <- num(pr$pi.lb)
    out$pi_ub <- num(pr$pi.ub)
  } else if (!is.null(newmods)) {
    pr <- predict(res, newmods = newmods)
    out$newmods <- newmods
    out$pred <- num(pr$pred); out$pred_se <- num(pr$se)
    out$pred_ci_lb <- num(pr$ci.lb); out$pred_ci_ub <- num(pr$ci.ub)
    out$pi_lb <- num(pr$pi.lb); out$pi_ub <- num(pr$pi.ub)
  }
  out
}

fixed_out <- function(res) {  # rma.mh / rma.peto
  out <- list(
    method = res$method, measure = res$measure, k = res$k, k_yi = res$k.yi,
    beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
    ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
    I2 = num(res$I2), H2 = num(res$H2), QE = num(res$QE), QEp = num(res$QEp),
    QE_df = res$k.yi - 1,
    weights = num(weights(res)), yi = num(res$yi.f), vi = num(res$vi.f)
  )
  if (!is.null(res$MH) && !is.na(res$MH)) {
    out$cmh <- num(res$MH); out$cmh_p <- num(res$MHp)
  }
  out
}

fit <- function(yi, vi, method, test, mods = NULL, data = NULL, newmods = NULL) {
  res <- if (is.null(mods)) {
    rma(yi, vi, method = method, test = test, control = CTRL)
  } else {
    rma(yi, vi, mods = mods, data = data, method = method, test = test, control = CTRL)
  }
  rma_out(res, newmods = newmods)
}

all_fits <- function(yi, vi, methods = ALL_METHODS, tests = TESTS) {
  out <- list()
  for (m in methods) for (t in tests) out[[paste0(m, "_", t)]] <- fit(yi, vi, m, t)
  out
}

escalc_out <- function(es) list(yi = num(es$yi), vi = num(es$vi))

# Subgroups. "common": one tau^2 across subgroups, metafor's mods = ~ factor(g) (QM test) and
# ~ factor(g) - 1 (subgroup estimates). "separate": each subgroup pooled on its own, then the
# fixed-effect Q between subgroup estimates, rma(estimate, sei = se, method = "FE")$QE.
subgroup_out <- function(yi, vi, g, method, test) {
  d <- data.frame(yi = yi, vi = vi, g = factor(g))
  with_int <- rma(yi, vi, mods = ~ factor(g), data = d, method = method, test = test, control = CTRL)
  cells <- rma(yi, vi, mods = ~ factor(g) - 1, data = d, method = method, test = test, control = CTRL)
  common <- list(
    levels = levels(d$g), beta = num(cells$beta), se = num(cells$se), pval = num(cells$pval),
    ci_lb = num(cells$ci.lb), ci_ub = num(cells$ci.ub), tau2 = num(with_int$tau2),
    QM = num(with_int$QM), QMdf = num(with_int$QMdf), QMp = num(with_int$QMp)
  )
  sep <- lapply(levels(d$g), function(l) {
    r <- rma(yi, vi, data = d, subset = g == l, method = method, test = test, control = CTRL)
    list(k = r$k, beta = num(r$beta), se = num(r$se), pval = num(r$pval), ci_lb = num(r$ci.lb),
         ci_ub = num(r$ci.ub), tau2 = num(r$tau2), QE = num(r$QE), QEp = num(r$QEp),
         I2 = num(r$I2))
  })
  est <- vapply(sep, function(s) s$beta, 0)
  se <- vapply(sep, function(s) s$se, 0)
  between <- rma(est, sei = se, method = "FE")
  separate <- list(
    levels = levels(d$g), k = vapply(sep, function(s) s$k, 0), beta = est, se = se,
    pval = vapply(sep, function(s) s$pval, 0), ci_lb = vapply(sep, function(s) s$ci_lb, 0),
    ci_ub = vapply(sep, function(s) s$ci_ub, 0), tau2 = vapply(sep, function(s) s$tau2, 0),
    QE = vapply(sep, function(s) s$QE, 0), I2 = vapply(sep, function(s) s$I2, 0),
    Qb = num(between$QE), Qb_df = length(est) - 1, Qb_p = num(between$QEp)
  )
  list(common = common, separate = separate)
}

all_subgroups <- function(yi, vi, g, methods = c("REML", "DL", "PM"), tests = TESTS) {
  out <- list()
  for (m in methods) for (t in tests) out[[paste0(m, "_", t)]] <- subgroup_out(yi, vi, g, m, t)
  out
}

write_input <- function(x, name) {
  write.csv(x, file.path(here, paste0("metadat_", name, ".csv")), row.names = FALSE)
}

ref <- list()
ref$meta <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
  script = "tests/reference/metafor_reference.R",
  control = CTRL, confint_control = CI_CTRL
)

# ---- dat.bcg: BCG vaccine against tuberculosis (Colditz et al. 1994) -------------------------
bcg <- dat.bcg
write_input(bcg, "bcg")
rr <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
or <- escalc("OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
rd <- escalc("RD", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
peto <- escalc("PETO", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
or2dl <- escalc("OR2DL", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
or2dn <- escalc("OR2DN", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
ref$bcg <- list(
  escalc = list(log_risk_ratio = escalc_out(rr), log_odds_ratio = escalc_out(or),
                risk_difference = escalc_out(rd), peto_log_odds_ratio = escalc_out(peto),
                or2dl = escalc_out(or2dl), or2dn = escalc_out(or2dn)),
  rma = all_fits(rr$yi, rr$vi),
  rma_log_odds_ratio = all_fits(or$yi, or$vi, methods = c("FE", "DL", "REML")),
  rma_risk_difference = all_fits(rd$yi, rd$vi, methods = c("FE", "DL", "REML")),
  mh = list(
    log_odds_ratio = fixed_out(rma.mh(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg, measure = "OR")),
    log_risk_ratio = fixed_out(rma.mh(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg, measure = "RR")),
    risk_difference = fixed_out(rma.mh(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg, measure = "RD"))
  ),
  peto = fixed_out(rma.peto(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)),
  subgroups_alloc = all_subgroups(rr$yi, rr$vi, bcg$alloc),
  metareg = local({
    out <- list()
    d <- data.frame(yi = rr$yi, vi = rr$vi, ablat = bcg$ablat, year = bcg$year, alloc = bcg$alloc)
    for (m in ALL_METHODS) for (t in TESTS) {
      out[[paste0(m, "_", t)]] <- fit(d$yi, d$vi, m, t, mods = ~ ablat + year, data = d,
                                      newmods = c(30, 1970))
    }
    out
  }),
  metareg_alloc_ablat = local({
    d <- data.frame(yi = rr$yi, vi = rr$vi, ablat = bcg$ablat, alloc = bcg$alloc)
    list(REML_z = fit(d$yi, d$vi, "REML", "z", mods = ~ factor(alloc) + ablat, data = d),
         REML_knha = fit(d$yi, d$vi, "REML", "knha", mods = ~ factor(alloc) + ablat, data = d))
  })
)

# ---- dat.normand1999: specialist stroke care, length of stay (Normand 1999) -----------------
nd <- dat.normand1999
write_input(nd, "normand1999")
smd <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
mi <- nd$n1i + nd$n2i - 2
sp <- sqrt(((nd$n1i - 1) * nd$sd1i^2 + (nd$n2i - 1) * nd$sd2i^2) / mi)
cohen <- (nd$m1i - nd$m2i) / sp
# t statistics and two-sided p values of the two-sample t test: the inputs of smd_from_t/_p
tstat <- cohen / sqrt(1 / nd$n1i + 1 / nd$n2i)
pval <- 2 * pt(abs(tstat), df = mi, lower.tail = FALSE)
t_back <- sign(tstat) * qt(pval / 2, df = mi, lower.tail = FALSE)
smd_t <- escalc("SMD", ti = tstat, n1i = n1i, n2i = n2i, data = nd)
smd_p <- escalc("SMD", ti = t_back, n1i = n1i, n2i = n2i, data = nd)
d2orl <- escalc("D2ORL", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
d2orn <- escalc("D2ORN", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
ref$normand1999 <- list(
  escalc = list(
    hedges_g = escalc_out(smd),
    correction_factor = num(metafor:::.cmicalc(mi)),
    # Cohen's d: the uncorrected d of escalc (yi / c(m)) with the large-sample variance
    cohens_d = list(yi = cohen, vi = 1 / nd$n1i + 1 / nd$n2i + cohen^2 / (2 * (nd$n1i + nd$n2i))),
    t_statistic = tstat, p_value = pval,
    hedges_g_from_t = escalc_out(smd_t), hedges_g_from_p = escalc_out(smd_p),
    d2orl = escalc_out(d2orl), d2orn = escalc_out(d2orn)
  ),
  rma = all_fits(smd$yi, smd$vi)
)

# ---- dat.collins1985a: H2 antagonists in upper GI bleeding (Collins & Langman 1985) ---------
co <- dat.collins1985a
write_input(co, "collins1985a")
collins_outcome <- function(xt, xc) {
  keep <- !is.na(co[[xt]]) & !is.na(co[[xc]])
  d <- data.frame(ai = co[[xt]][keep], n1i = co$nti[keep], ci = co[[xc]][keep], n2i = co$nci[keep])
  or <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
  rr <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
  rd <- escalc("RD", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
  pe <- escalc("PETO", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)  # escalc corrects zero cells
  pe_none <- escalc("PETO", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, to = "none", drop00 = TRUE)
  or00 <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, drop00 = TRUE)
  list(
    rows = which(keep),
    escalc = list(log_odds_ratio = escalc_out(or), log_risk_ratio = escalc_out(rr),
                  risk_difference = escalc_out(rd), peto_log_odds_ratio_only0 = escalc_out(pe),
                  peto_log_odds_ratio = escalc_out(pe_none),
                  log_odds_ratio_drop00 = escalc_out(or00)),
    mh = list(
      log_odds_ratio = fixed_out(rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, measure = "OR")),
      log_risk_ratio = fixed_out(rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, measure = "RR")),
      risk_difference = fixed_out(rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, measure = "RD"))
    ),
    peto = fixed_out(rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)),
    rma = all_fits(or$yi, or$vi, methods = c("FE", "DL", "REML", "PM"))
  )
}
ref$collins1985a <- list(
  bleeding = collins_outcome("b.xti", "b.xci"),
  operation = collins_outcome("o.xti", "o.xci"),  # trial 12 has no operations in either arm
  death = collins_outcome("d.xti", "d.xci")
)

# ---- dat.pignon2000: chemotherapy in head and neck cancer (Pignon et al. 2000) --------------
pg <- dat.pignon2000
write_input(pg, "pignon2000")
pg_yi <- pg$OmE / pg$V
pg_vi <- 1 / pg$V
ref$pignon2000 <- list(
  escalc = list(yi = pg_yi, vi = pg_vi),
  rma = all_fits(pg_yi, pg_vi),
  subgroups_grp = all_subgroups(pg_yi, pg_vi, pg$grp)
)

# ---- dat.hart1999: warfarin in atrial fibrillation, events per person-year (Hart 1999) ------
ha <- dat.hart1999
write_input(ha, "hart1999")
irr <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = ha)
ref$hart1999 <- list(
  escalc = list(log_incidence_rate_ratio = escalc_out(irr)),
  mh = list(log_incidence_rate_ratio = fixed_out(rma.mh(x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i,
                                                        data = ha, measure = "IRR"))),
  rma = all_fits(irr$yi, irr$vi, methods = c("FE", "DL", "REML"))
)

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = 1), out_file)
cat("wrote", out_file, "\n")
