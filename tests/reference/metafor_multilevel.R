# Reference numbers for rjtrial.meta's dependent-effects models: multilevel (rma.mv),
# cluster-robust variance (clubSandwich CR2 with Satterthwaite df and the HTZ Wald test) and
# the correlated-effects RVE model (robumeta).
#
# Run from the repository root (needs r-cran-metafor 3.8, r-cran-metadat, r-cran-clubsandwich,
# r-cran-robumeta, jsonlite):
#
#     Rscript tests/reference/metafor_multilevel.R
#
# Writes  tests/reference/metadat_konstantopoulos2011.csv  (56 schools in 11 districts)
#         tests/reference/metadat_assink2016.csv           (100 effects in 17 studies)
#         tests/reference/metadat_tannersmith2016.csv      (113 effects in 17 studies; esid added)
#         tests/reference/generated_multilevel.csv         (generated here: 40 studies, seed 20261205)
#         tests/reference/metafor_multilevel.json
#
# Every rma.mv fit is tight: control = list(rel.tol = 1e-12, iter.max = 10000,
# eval.max = 10000) for nlminb (1e-14 makes nlminb report false convergence; BFGS and Nelder-Mead
# at reltol 1e-14 agree with it to 3e-9), and each profile-likelihood interval is found with
# confint(res, control = list(tol = 1e-12, maxiter = 10000)) (its default tol is 1.2e-4).
# The test suite reads the JSON and the CSVs and never needs R.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(clubSandwich)
  library(robumeta)
  library(jsonlite)
})

here <- "tests/reference"
out_file <- file.path(here, "metafor_multilevel.json")
CTRL <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
CI_CTRL <- list(tol = 1e-12, maxiter = 10000)
CTRL_BFGS <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000)
num <- function(x) as.numeric(unname(x))
optimizers_used <- list()

# rma.mv with nlminb at CTRL; where nlminb stops with "false convergence" at that tolerance
# (the year moderator of dat.konstantopoulos2011), BFGS at reltol 1e-14 instead (recorded).
mv <- function(...) {
  call <- match.call()
  call[[1]] <- quote(rma.mv)
  call$control <- CTRL
  res <- tryCatch(eval(call, parent.frame()), error = function(e) NULL)
  if (is.null(res)) {
    call$control <- CTRL_BFGS
    res <- eval(call, parent.frame())
    optimizers_used[[length(optimizers_used) + 1]] <<- paste(deparse(call, width.cutoff = 500L), collapse = " ")
  }
  res
}

# I^2 by level: metafor's FAQ ("I^2 for multilevel and multivariate models"), W = V^-1.
i2_levels <- function(res) {
  W <- solve(res$V)
  X <- model.matrix(res)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  typical <- (res$k - res$p) / sum(diag(P))
  list(total = 100 * sum(res$sigma2) / (sum(res$sigma2) + typical),
       levels = num(100 * res$sigma2 / (sum(res$sigma2) + typical)), typical = typical)
}

mv_out <- function(res, newmods = NULL, profile = TRUE) {
  out <- list(
    method = res$method, test = res$test, k = res$k, p = res$p, coef_names = rownames(res$beta),
    beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
    ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub), vb = unname(res$vb), ddf = num(res$ddf),
    sigma2 = num(res$sigma2), s_names = res$s.names, s_nlevels = num(res$s.nlevels),
    QE = num(res$QE), QEp = num(res$QEp), QE_df = res$k - res$p,
    logLik = num(logLik(res)), deviance = num(deviance(res)), AIC = num(AIC(res)), BIC = num(BIC(res)),
    I2 = i2_levels(res)
  )
  if (!res$int.only) {
    out$QM <- num(res$QM); out$QMdf <- num(res$QMdf); out$QMp <- num(res$QMp)
  }
  if (profile) {
    # The profile refits inherit the model's control; nlminb at rel.tol 1e-12 fails on some of
    # them ("cannot obtain bound"), so the profile is run on the same model refitted with BFGS at
    # reltol 1e-14 (limits equal to nlminb's default-control profile to 12 digits where both finish).
    refit <- update(res, control = CTRL_BFGS)
    ci <- suppressWarnings(confint(refit, control = CI_CTRL))
    if (length(res$sigma2) == 1) ci <- list(ci)
    out$sigma2_ci <- lapply(seq_along(res$sigma2), function(j) num(ci[[j]]$random[1, c("estimate", "ci.lb", "ci.ub")]))
  }
  pr <- if (res$int.only) predict(res) else if (!is.null(newmods)) predict(res, newmods = newmods) else NULL
  if (!is.null(pr)) {
    out$newmods <- newmods
    out$pred <- num(pr$pred); out$pred_se <- num(pr$se)
    out$pred_ci_lb <- num(pr$ci.lb); out$pred_ci_ub <- num(pr$ci.ub)
    out$pi_lb <- num(pr$pi.lb); out$pi_ub <- num(pr$pi.ub)
  }
  out
}

cr2_out <- function(res, cluster, constraints = NULL) {
  V <- vcovCR(res, cluster = cluster, type = "CR2")
  ct <- coef_test(res, vcov = V, test = c("Satterthwaite", "z"))
  out <- list(vcov = unname(as.matrix(V)), beta = num(ct$beta), se = num(ct$SE), tstat = num(ct$tstat),
              df = num(ct$df_Satt), pval = num(ct$p_Satt), pval_z = num(ct$p_z),
              ci = lapply(seq_len(nrow(ct)), function(i) {
                crit <- qt(0.975, ct$df_Satt[i]); num(ct$beta[i] + c(-1, 1) * crit * ct$SE[i])
              }))
  if (!is.null(constraints)) {
    w <- Wald_test(res, constraints = constrain_zero(constraints), vcov = V, test = c("HTZ", "chi-sq", "Naive-F"))
    out$wald <- lapply(split(w, w$test), function(r) list(Fstat = num(r$Fstat), delta = num(r$delta),
                                                            df_num = num(r$df_num), df_denom = num(r$df_denom),
                                                            p_val = num(r$p_val)))
    out$wald_coefs <- constraints
  }
  out
}

robu_out <- function(fit) {
  tab <- fit$reg_table
  list(labels = as.character(tab$labels), b = num(tab$b.r), se = num(tab$SE), t = num(tab$t),
       df = num(tab$dfs), pval = num(tab$prob), ci_lb = num(tab$CI.L), ci_ub = num(tab$CI.U),
       vcov = unname(as.matrix(fit$VR.r)), tau2 = num(fit$mod_info$tau.sq), I2 = num(fit$mod_info$I.2),
       rho = num(fit$mod_info$rho), N = num(fit$N), M = num(fit$M))
}

ranef_out <- function(res) {
  re <- ranef(res)
  lapply(re, function(x) list(labels = rownames(x), pred = num(x$intrcpt), se = num(x$se),
                               pi_lb = num(x$pi.lb), pi_ub = num(x$pi.ub)))
}

ref <- list()
ref$meta <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  robumeta_version = as.character(packageVersion("robumeta")),
  generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
  script = "tests/reference/metafor_multilevel.R", control = CTRL, confint_control = CI_CTRL
)

# ---- dat.konstantopoulos2011: modified school calendars, 56 schools in 11 districts ------------
ko <- dat.konstantopoulos2011
write.csv(ko, file.path(here, "metadat_konstantopoulos2011.csv"), row.names = FALSE)  # before year1990
ko_reml <- mv(yi, vi, random = ~ 1 | district/school, data = ko)
ko_ml <- mv(yi, vi, random = ~ 1 | district/school, data = ko, method = "ML")
ko_t <- mv(yi, vi, random = ~ 1 | district/school, data = ko, test = "t")
# year centred at 1990: with raw years the intercept (~ -20) amplifies R's optimiser error
# in sigma^2 (~5e-9) to 2e-5; centring leaves the model and its fit unchanged
ko$year1990 <- ko$year - 1990
ko_year <- mv(yi, vi, mods = ~ year1990, random = ~ 1 | district/school, data = ko)
ko_year_t <- mv(yi, vi, mods = ~ year1990, random = ~ 1 | district/school, data = ko, test = "t")
ko_uni <- rma(yi, vi, data = ko, control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))
ref$konstantopoulos2011 <- list(
  REML = c(mv_out(ko_reml), list(ranef = ranef_out(ko_reml))),
  ML = mv_out(ko_ml),
  REML_t = mv_out(ko_t, profile = FALSE),
  year_REML = mv_out(ko_year, newmods = 5),
  year_REML_t = mv_out(ko_year_t, newmods = 5, profile = FALSE),
  cr2_REML = cr2_out(ko_reml, cluster = ko$district),
  cr2_year_REML = cr2_out(ko_year, cluster = ko$district, constraints = 2),
  cr2_uni = cr2_out(ko_uni, cluster = ko$district),
  uni_tau2 = num(ko_uni$tau2)
)

# ---- dat.assink2016: delinquency and parenting, 100 effects in 17 studies ----------------------
as <- dat.assink2016
write.csv(as, file.path(here, "metadat_assink2016.csv"), row.names = FALSE)
as_reml <- mv(yi, vi, random = ~ 1 | study/esid, data = as)
as_del <- mv(yi, vi, mods = ~ deltype, random = ~ 1 | study/esid, data = as)
as_del_t <- mv(yi, vi, mods = ~ deltype + year, random = ~ 1 | study/esid, data = as, test = "t")
V06 <- impute_covariance_matrix(as$vi, cluster = as$study, r = 0.6, return_list = FALSE)
as_rho <- mv(yi, V06, random = ~ 1 | study/esid, data = as)
as_uni <- rma(yi, vi, mods = ~ deltype + year, data = as,
              control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))
as_robu <- robu(yi ~ 1, data = as, studynum = study, var.eff.size = vi, modelweights = "CORR", rho = 0.8,
                small = TRUE)
as_robu_mod <- robu(yi ~ deltype + year, data = as, studynum = study, var.eff.size = vi,
                    modelweights = "CORR", rho = 0.8, small = TRUE)
ref$assink2016 <- list(
  REML = mv_out(as_reml),
  deltype_REML = mv_out(as_del, newmods = c(1, 0)),
  deltype_year_REML_t = mv_out(as_del_t, newmods = c(0, 1, 2), profile = FALSE),
  rho06_REML = mv_out(as_rho),
  cr2_REML = cr2_out(as_reml, cluster = as$study),
  cr2_deltype_REML = cr2_out(as_del, cluster = as$study, constraints = 2:3),
  cr2_deltype_year_REML_t = cr2_out(as_del_t, cluster = as$study, constraints = 2:4),
  cr2_rho06_REML = cr2_out(as_rho, cluster = as$study),
  cr2_uni_deltype_year = c(cr2_out(as_uni, cluster = as$study, constraints = 2:4), list(tau2 = num(as_uni$tau2))),
  robu = robu_out(as_robu),
  robu_deltype_year = robu_out(as_robu_mod)
)

# ---- dat.tannersmith2016: alcohol interventions, 113 effects in 17 studies ---------------------
ts <- dat.tannersmith2016
ts$esid <- ave(seq_len(nrow(ts)), ts$studyid, FUN = seq_along)
write.csv(ts, file.path(here, "metadat_tannersmith2016.csv"), row.names = FALSE)
ts_robu <- robu(yi ~ 1, data = ts, studynum = studyid, var.eff.size = vi, modelweights = "CORR",
                rho = 0.8, small = TRUE)
ts_robu_mod <- robu(yi ~ aget1 + propmale, data = ts, studynum = studyid, var.eff.size = vi,
                    modelweights = "CORR", rho = 0.8, small = TRUE)
ts_robu_large <- robu(yi ~ aget1 + propmale, data = ts, studynum = studyid, var.eff.size = vi,
                      modelweights = "CORR", rho = 0.8, small = FALSE)
ts_robu_rho0 <- robu(yi ~ 1, data = ts, studynum = studyid, var.eff.size = vi, modelweights = "CORR",
                     rho = 0, small = TRUE)
ts_reml <- mv(yi, vi, random = ~ 1 | studyid/esid, data = ts)
ts_mod <- mv(yi, vi, mods = ~ aget1 + propmale, random = ~ 1 | studyid/esid, data = ts)
ref$tannersmith2016 <- list(
  robu = robu_out(ts_robu),
  robu_aget1_propmale = robu_out(ts_robu_mod),
  robu_aget1_propmale_large = robu_out(ts_robu_large),
  robu_rho0 = robu_out(ts_robu_rho0),
  REML = mv_out(ts_reml),
  aget1_propmale_REML = mv_out(ts_mod, newmods = c(14, 0.5)),
  cr2_REML = cr2_out(ts_reml, cluster = ts$studyid),
  cr2_aget1_propmale_REML = cr2_out(ts_mod, cluster = ts$studyid, constraints = 2:3)
)

# ---- generated: 40 studies with 1-6 correlated effects each -------------------------------------
set.seed(20261205)
J <- 40
sizes <- pmin(6, 1 + rpois(J, 1.8))
gen <- data.frame(study = rep(sprintf("S%02d", seq_len(J)), sizes))
gen$es_id <- ave(seq_len(nrow(gen)), gen$study, FUN = seq_along)
x_study <- round(rnorm(J), 3)
gen$dose <- rep(x_study, sizes)
gen$outcome <- sample(c("frequency", "prevalence", "severity"), nrow(gen), replace = TRUE)
gen$variance <- round(runif(nrow(gen), 0.01, 0.2), 4)
u_study <- rep(rnorm(J, 0, sqrt(0.05)), sizes)
u_es <- rnorm(nrow(gen), 0, sqrt(0.02))
err <- unlist(lapply(split(gen$variance, factor(gen$study, levels = unique(gen$study))), function(v) {
  S <- (0.5 + diag(0.5, length(v))) * tcrossprod(sqrt(v)); as.numeric(t(chol(S)) %*% rnorm(length(v)))
}))
gen$estimate <- round(-0.15 + 0.1 * gen$dose + 0.08 * (gen$outcome == "severity") + u_study + u_es + err, 4)
write.csv(gen, file.path(here, "generated_multilevel.csv"), row.names = FALSE)
g_reml <- mv(estimate, variance, random = ~ 1 | study/es_id, data = gen)
g_mod_t <- mv(estimate, variance, mods = ~ dose + outcome, random = ~ 1 | study/es_id, data = gen,
                  test = "t")
Vg <- impute_covariance_matrix(gen$variance, cluster = gen$study, r = 0.5, return_list = FALSE)
g_rho <- mv(estimate, Vg, mods = ~ dose + outcome, random = ~ 1 | study/es_id, data = gen)
g_robu <- robu(estimate ~ dose + outcome, data = gen, studynum = study, var.eff.size = variance,
               modelweights = "CORR", rho = 0.8, small = TRUE)
g_uni <- rma(estimate, variance, mods = ~ dose + outcome, data = gen,
             control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))
ref$generated <- list(
  REML = c(mv_out(g_reml), list(ranef = ranef_out(g_reml))),
  dose_outcome_REML_t = mv_out(g_mod_t, newmods = c(0.5, 0, 1)),
  rho05_dose_outcome_REML = mv_out(g_rho, newmods = c(0.5, 0, 1)),
  cr2_REML = cr2_out(g_reml, cluster = gen$study),
  cr2_dose_outcome_REML_t = cr2_out(g_mod_t, cluster = gen$study, constraints = 2:4),
  cr2_rho05_dose_outcome_REML = cr2_out(g_rho, cluster = gen$study, constraints = 3:4),
  cr2_uni_dose_outcome = c(cr2_out(g_uni, cluster = gen$study, constraints = 2:4), list(tau2 = num(g_uni$tau2))),
  robu_dose_outcome = robu_out(g_robu)
)

ref$meta$bfgs_fits <- optimizers_used
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = 1), out_file)
cat("wrote", out_file, "\n")
