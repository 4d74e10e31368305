# Reference numbers for the metafor options rjtrial.meta offers beyond rma()'s defaults:
# test = "t" / "adhoc", the estimators HSk, PMM and GENQ (with weights), permutest(),
# blup() / ranef(), regtest() with every predictor and model, and na.action.
#
# Run from the repository root (needs r-cran-metafor 3.8, r-cran-metadat, jsonlite):
#
#     Rscript tests/reference/metafor_options.R
#
# Reads tests/reference/metadat_bcg.csv and metadat_normand1999.csv (written by
# metafor_reference.R); writes tests/reference/metafor_options.json. Every fit uses
# control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

here <- "tests/reference"
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
num <- function(x) as.numeric(unname(x))

fit_out <- function(res) {
  out <- list(method = res$method, test = res$test, k = res$k, beta = num(res$beta), se = num(res$se),
              zval = num(res$zval), pval = num(res$pval), ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
              vb = unname(res$vb), tau2 = num(res$tau2), se_tau2 = num(res$se.tau2), ddf = num(res$ddf),
              I2 = num(res$I2), H2 = num(res$H2), QE = num(res$QE), weights = num(weights(res)),
              s2w = num(res$s2w))
  if (!res$int.only) {
    out$QM <- num(res$QM); out$QMdf <- num(res$QMdf); out$QMp <- num(res$QMp)
  } else {
    pr <- predict(res)
    out$pi_lb <- num(pr$pi.lb); out$pi_ub <- num(pr$pi.ub)
  }
  out
}

bcg <- read.csv(file.path(here, "metadat_bcg.csv"))
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
bcg$ni <- with(bcg, tpos + tneg + cpos + cneg)
nd <- read.csv(file.path(here, "metadat_normand1999.csv"))
nd <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)

ref <- list()
ref$meta <- list(r_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
                 generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
                 script = "tests/reference/metafor_options.R", control = CTRL)

# ---- tests: z, t, knha, adhoc -----------------------------------------------------------------
tests <- list()
for (name in c("bcg", "normand1999")) {
  d <- if (name == "bcg") bcg else nd
  for (m in c("REML", "DL", "FE")) for (t in c("t", "adhoc", "knha")) {
    tests[[paste(name, m, t, sep = "_")]] <- fit_out(rma(yi, vi, data = d, method = m, test = t, control = CTRL))
  }
}
# the ad hoc truncation binds where the Knapp-Hartung factor is below 1: SJ and HE on dat.bcg
for (m in c("SJ", "HE")) for (t in c("knha", "adhoc")) {
  tests[[paste("bcg", m, t, sep = "_")]] <- fit_out(rma(yi, vi, data = bcg, method = m, test = t, control = CTRL))
  tests[[paste("bcg_ablat", m, t, sep = "_")]] <- fit_out(rma(yi, vi, mods = ~ ablat, data = bcg, method = m,
                                                               test = t, control = CTRL))
}
for (t in c("t", "adhoc")) {
  tests[[paste0("bcg_ablat_REML_", t)]] <- fit_out(rma(yi, vi, mods = ~ ablat, data = bcg, test = t, control = CTRL))
}
ref$tests <- tests

# ---- estimators HSk, PMM, GENQ ----------------------------------------------------------------
est <- list()
for (name in c("bcg", "normand1999")) {
  d <- if (name == "bcg") bcg else nd
  for (m in c("HSk", "PMM")) {
    est[[paste(name, m, sep = "_")]] <- fit_out(rma(yi, vi, data = d, method = m, control = CTRL))
  }
}
est$bcg_ablat_HSk <- fit_out(rma(yi, vi, mods = ~ ablat, data = bcg, method = "HSk", control = CTRL))
est$bcg_ablat_PMM <- fit_out(rma(yi, vi, mods = ~ ablat, data = bcg, method = "PMM", control = CTRL))
# GENQ: generalised Q with weights = total sample size (and, as a check, 1 / vi: the DL estimator)
est$bcg_GENQ_ni <- fit_out(rma(yi, vi, weights = ni, data = bcg, method = "GENQ", control = CTRL))
est$bcg_GENQ_ni_knha <- fit_out(rma(yi, vi, weights = ni, data = bcg, method = "GENQ", test = "knha", control = CTRL))
est$bcg_GENQ_inv <- fit_out(rma(yi, vi, weights = 1 / vi, data = bcg, method = "GENQ", control = CTRL))
est$bcg_ablat_GENQ_ni <- fit_out(rma(yi, vi, mods = ~ ablat, weights = ni, data = bcg, method = "GENQ",
                                     control = CTRL))
ref$estimators <- est

# ---- permutest (exact) --------------------------------------------------------------------------
res <- rma(yi, vi, data = bcg, control = CTRL)
p_int <- permutest(res, exact = TRUE, progbar = FALSE)
small <- bcg[1:7, ]
res_mod <- rma(yi, vi, mods = ~ ablat, data = small, control = CTRL)
p_mod <- permutest(res_mod, exact = TRUE, progbar = FALSE)
res_knha <- rma(yi, vi, data = bcg, test = "knha", control = CTRL)
p_knha <- permutest(res_knha, exact = TRUE, progbar = FALSE)
ref$permutest <- list(
  bcg_REML = list(pval = num(p_int$pval), zval = num(p_int$zval), n = 2^13),
  bcg_REML_knha = list(pval = num(p_knha$pval), zval = num(p_knha$zval), n = 2^13),
  # ablat 44 occurs twice in the first 7 trials: 7! / 2! distinct permutations
  bcg7_ablat_REML = list(pval = num(p_mod$pval), QMp = num(p_mod$QMp), zval = num(p_mod$zval), n = factorial(7) / 2)
)

# ---- blup / ranef -------------------------------------------------------------------------------
blup_out <- function(res) {
  b <- blup(res); r <- ranef(res)
  list(blup = list(pred = num(b$pred), se = num(b$se), pi_lb = num(b$pi.lb), pi_ub = num(b$pi.ub)),
       ranef = list(pred = num(r$pred), se = num(r$se), pi_lb = num(r$pi.lb), pi_ub = num(r$pi.ub)))
}
ref$blup <- list(
  bcg_REML = blup_out(res),
  bcg_REML_knha = blup_out(res_knha),
  bcg_ablat_REML = blup_out(rma(yi, vi, mods = ~ ablat, data = bcg, control = CTRL))
)

# ---- regtest -------------------------------------------------------------------------------------
reg_out <- function(r) list(zval = num(r$zval), pval = num(r$pval), dfs = num(r$dfs),
                            est = num(r$est), ci_lb = num(r$ci.lb), ci_ub = num(r$ci.ub))
res_ni <- rma(yi, vi, ni = ni, data = bcg, control = CTRL)
regs <- list()
for (model in c("rma", "lm")) for (pred in c("sei", "vi", "ni", "ninv", "sqrtninv")) {
  regs[[paste(model, pred, sep = "_")]] <- reg_out(regtest(res_ni, model = model, predictor = pred))
}
regs$rma_sei_ablat <- reg_out(regtest(rma(yi, vi, mods = ~ ablat, ni = ni, data = bcg, control = CTRL)))
regs$lm_sei_ablat <- reg_out(regtest(rma(yi, vi, mods = ~ ablat, ni = ni, data = bcg, control = CTRL),
                                     model = "lm"))
ref$regtest <- regs

# ---- na.action ---------------------------------------------------------------------------------
holed <- bcg
holed$yi[3] <- NA
holed$ablat[7] <- NA
ref$na_omit <- list(
  int = c(fit_out(suppressWarnings(rma(yi, vi, data = holed, control = CTRL))), list(omitted = 3)),
  ablat = c(fit_out(suppressWarnings(rma(yi, vi, mods = ~ ablat, data = holed, control = CTRL))),
            list(omitted = c(3, 7)))
)

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = 1),
           file.path(here, "metafor_options.json"))
cat("wrote", file.path(here, "metafor_options.json"), "\n")
