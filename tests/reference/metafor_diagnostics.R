# Reference numbers for rjtrial.meta.bias and rjtrial.meta.sensitivity, computed with R's metafor.
#
# Run from the repository root (needs r-base-core, r-cran-metafor, r-cran-metadat, jsonlite):
#
#     Rscript tests/reference/metafor_diagnostics.R
#
# Reads   tests/reference/metadat_bcg.csv and metadat_normand1999.csv (written by
#         metafor_reference.R; the same rows as metadat's dat.bcg and dat.normand1999)
# Writes  tests/reference/metafor_diagnostics.json
#
# Every model is fitted with control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000);
# regtest, leave1out, cumul and influence reuse the model's control, trimfill is given it
# explicitly (its internal rma.uni calls otherwise use metafor's defaults).
# Numbers are written by jsonlite with digits = NA (15 significant digits); NA is null.
# The test suite reads the JSON and never needs R.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

here <- "tests/reference"
out_file <- file.path(here, "metafor_diagnostics.json")
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
num <- function(x) as.numeric(unname(x))

diagnostics <- function(res, yi, vi) {
  out <- list(
    fit = list(beta = num(coef(res)), se = num(res$se), tau2 = num(res$tau2)),
    regtest = local({
      r <- regtest(res)  # model = "rma", predictor = "sei"
      list(zval = num(r$zval), pval = num(r$pval), est = num(r$est), ci_lb = num(r$ci.lb),
           ci_ub = num(r$ci.ub), slope = num(coef(r$fit)[2]), slope_se = num(r$fit$se[2]),
           tau2 = num(r$fit$tau2))
    }),
    ranktest = local({
      r <- ranktest(res)
      list(tau = num(r$tau), pval = num(r$pval))
    }),
    trimfill = local({
      tf <- trimfill(res, control = CTRL)
      list(k0 = num(tf$k0), se_k0 = num(tf$se.k0), side = tf$side, beta = num(coef(tf)),
           se = num(tf$se), zval = num(tf$zval), pval = num(tf$pval), ci_lb = num(tf$ci.lb),
           ci_ub = num(tf$ci.ub), tau2 = num(tf$tau2), k = num(tf$k), yi = num(tf$yi),
           vi = num(tf$vi), fill = as.logical(tf$fill))
    }),
    trimfill_R0 = local({
      tf <- trimfill(res, estimator = "R0", control = CTRL)
      list(k0 = num(tf$k0), side = tf$side, beta = num(coef(tf)), se = num(tf$se), tau2 = num(tf$tau2))
    }),
    fsn = local({
      ro <- fsn(yi, vi)  # Rosenthal (Stouffer)
      ow <- fsn(yi, vi, type = "Orwin")  # unweighted, target = mean / 2
      rb <- fsn(yi, vi, type = "Rosenberg")
      list(rosenthal = num(ro$fsnum), rosenthal_pval = num(ro$pval),
           orwin = num(ow$fsnum), orwin_target = num(ow$target), orwin_meanes = num(ow$meanes),
           rosenberg = num(rb$fsnum), rosenberg_pval = num(rb$pval), rosenberg_meanes = num(rb$meanes))
    }),
    leave1out = local({
      l <- leave1out(res)
      list(estimate = num(l$estimate), se = num(l$se), zval = num(if (is.null(l$zval)) l$tval else l$zval), pval = num(l$pval),
           ci_lb = num(l$ci.lb), ci_ub = num(l$ci.ub), Q = num(l$Q), Qp = num(l$Qp), tau2 = num(l$tau2),
           I2 = num(l$I2), H2 = num(l$H2))
    }),
    cumul = local({
      l <- cumul(res)
      list(estimate = num(l$estimate), se = num(l$se), zval = num(if (is.null(l$zval)) l$tval else l$zval), pval = num(l$pval),
           ci_lb = num(l$ci.lb), ci_ub = num(l$ci.ub), Q = num(l$Q), Qp = num(l$Qp), tau2 = num(l$tau2),
           I2 = num(l$I2), H2 = num(l$H2))
    }),
    influence = local({
      inf <- influence(res)$inf
      list(rstudent = num(inf$rstudent), dffits = num(inf$dffits), cook_d = num(inf$cook.d),
           cov_r = num(inf$cov.r), tau2_del = num(inf$tau2.del), QE_del = num(inf$QE.del),
           hat = num(inf$hat), weight = num(inf$weight))
    })
  )
  out
}

ref <- list(versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor"))))

# ---- dat.bcg: log risk ratios, REML and DL (z), REML with Knapp-Hartung ----------------------
bcg <- read.csv(file.path(here, "metadat_bcg.csv"))
rr <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
ref$bcg <- list(
  REML_z = diagnostics(rma(yi, vi, data = rr, method = "REML", control = CTRL), rr$yi, rr$vi),
  DL_z = diagnostics(rma(yi, vi, data = rr, method = "DL", control = CTRL), rr$yi, rr$vi),
  REML_knha = diagnostics(rma(yi, vi, data = rr, method = "REML", test = "knha", control = CTRL), rr$yi, rr$vi)
)
# influence of a meta-regression (absolute latitude)
mr <- rma(yi, vi, mods = ~ ablat, data = rr, method = "REML", control = CTRL)
inf <- influence(mr)$inf
ref$bcg$REML_ablat_influence <- list(rstudent = num(inf$rstudent), dffits = num(inf$dffits),
  cook_d = num(inf$cook.d), cov_r = num(inf$cov.r), tau2_del = num(inf$tau2.del),
  QE_del = num(inf$QE.del), hat = num(inf$hat), weight = num(inf$weight))

# ---- dat.normand1999: standardised mean differences (Hedges' g), REML --------------------------
nd <- read.csv(file.path(here, "metadat_normand1999.csv"))
smd <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
ref$normand1999 <- list(
  REML_z = diagnostics(rma(yi, vi, data = smd, method = "REML", control = CTRL), smd$yi, smd$vi)
)

write_json(ref, out_file, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
cat("wrote", out_file, "\n")
