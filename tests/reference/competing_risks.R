# Reference numbers for rjtrial's competing-risks verbs (cumulative_incidence, gray_test,
# fine_gray), computed with R's `survival` (multi-state survfit, finegray + coxph) and `cmprsk`
# (cuminc, crr).
#
# Run from the repository root (needs r-base-core, r-cran-survival, r-cran-mass, cmprsk):
#
#     Rscript tests/reference/competing_risks.R
#
# Writes  tests/reference/mgus2_competing.csv     survival::mgus2, competing progression (pcm)
#                                                   and death, as in the survival package's
#                                                   "compete" vignette
#         tests/reference/melanoma.csv            MASS::Melanoma, event recoded 0/1/2
# Reads   tests/reference/competing_trial.csv     (make_competing_trial.py)
# Writes  tests/reference/competing_risks.json
#
# Every number is written with 17 significant digits, so the JSON holds R's doubles exactly;
# NA is written as null and +-Inf as the strings "Inf" / "-Inf". The test suite reads the JSON
# and the CSVs and never needs R.
#
# crr is run with gtol = 1e-12 and maxiter = 100: its default (gtol = 1e-6) stops where the
# scaled score is below 1e-6 times the log-likelihood, up to ~1e-6 from the optimum; the
# coefficients at R's default are recorded too (crr_default) to show the difference.

suppressPackageStartupMessages({
  library(survival)
  library(MASS)
  library(cmprsk)
})

here <- "tests/reference"
out_file <- file.path(here, "competing_risks.json")

# ---- a small JSON writer with full-precision numbers ----------------------------------------
fmt <- function(x) {
  ifelse(is.na(x), "null",
         ifelse(is.infinite(x), ifelse(x > 0, '"Inf"', '"-Inf"'), sprintf("%.17g", x)))
}
to_json <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    nm <- names(x)
    body <- vapply(seq_along(x), function(i) to_json(x[[i]]), "")
    if (is.null(nm)) return(paste0("[", paste(body, collapse = ","), "]"))
    return(paste0("{", paste0('"', nm, '":', body, collapse = ","), "}"))
  }
  if (is.matrix(x)) {
    rows <- vapply(seq_len(nrow(x)), function(i) to_json(unname(x[i, ])), "")
    return(paste0("[", paste(rows, collapse = ","), "]"))
  }
  if (is.character(x) || is.factor(x)) {
    body <- paste0('"', as.character(x), '"')
    return(if (length(x) == 1 && is.null(attr(x, "array"))) body else paste0("[", paste(body, collapse = ","), "]"))
  }
  if (is.logical(x) && !all(is.na(x))) x <- as.numeric(x)
  body <- fmt(as.numeric(x))
  if (length(x) == 1 && is.null(attr(x, "array"))) body else paste0("[", paste(body, collapse = ","), "]")
}
arr <- function(x) structure(as.numeric(x), array = TRUE)   # always a JSON array
carr <- function(x) structure(as.character(x), array = TRUE)

# ---- the data ----------------------------------------------------------------------------------
# mgus2 as in vignette("compete", package = "survival"): time to plasma-cell malignancy (pcm),
# with death before it as a competing risk; months.
mg <- mgus2
mg$etime <- with(mg, ifelse(pstat == 0, futime, ptime))
mg$event <- with(mg, ifelse(pstat == 0, 2 * death, 1))  # 0 censored, 1 pcm, 2 death
mg$sex <- as.character(mg$sex)
mgus <- mg[, c("id", "age", "sex", "hgb", "mspike", "etime", "event")]
write.csv(mgus, file.path(here, "mgus2_competing.csv"), row.names = FALSE, na = "")

# MASS::Melanoma: status 1 died of melanoma, 2 alive, 3 died of other causes; days.
mel <- Melanoma
mel$event <- c(1, 0, 2)[mel$status]
mel$id <- seq_len(nrow(mel))
melanoma <- mel[, c("id", "time", "status", "event", "sex", "age", "year", "thickness", "ulcer")]
write.csv(melanoma, file.path(here, "melanoma.csv"), row.names = FALSE)

trial <- read.csv(file.path(here, "competing_trial.csv"))

# ---- extractors --------------------------------------------------------------------------------
# Multi-state Aalen-Johansen (survfit with a factor status): every time, per group.
aj_out <- function(time, event, group, conf_types = c("log", "log-log", "plain")) {
  ev <- factor(event, levels = sort(unique(c(0, event))))
  out <- list()
  for (ct in conf_types) {
    fit <- survfit(Surv(time, ev) ~ group, conf.type = ct)
    if (ct == "log") {
      strata <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
        rep(sub("^[^=]*=", "", names(fit$strata)), fit$strata)
      out$group <- carr(strata)
      out$time <- arr(fit$time)
      out$states <- carr(fit$states)
      out$n_risk <- arr(fit$n.risk[, 1])
      out$n_event <- fit$n.event
      out$n_censor <- arr(fit$n.censor)
      out$pstate <- fit$pstate
      out$std_err <- fit$std.err
    }
    # survfit_confint's arcsin branch loses the matrix shape (pmax/pmin); the values are right
    lower <- fit$lower; upper <- fit$upper
    dim(lower) <- dim(upper) <- dim(fit$pstate)
    out[[paste0("lower_", ct)]] <- lower
    out[[paste0("upper_", ct)]] <- upper
  }
  out
}

# cmprsk::cuminc: estimates and (delta-method) variances at chosen times, and Gray's test.
cuminc_out <- function(time, event, group, times, strata = NULL, rho = 0, estimates = TRUE) {
  fit <- if (is.null(strata)) cuminc(time, event, group, rho = rho) else cuminc(time, event, group, strata, rho = rho)
  out <- list()
  if (estimates) {  # the same for every strata and rho: only the tests change
    tp <- timepoints(fit, times)
    curves <- fit[names(fit) != "Tests"]
    out <- list(curves = carr(names(curves)), times = arr(sort(unique(times))), est = tp$est, var = tp$var)
  }
  if (!is.null(fit$Tests)) {
    out$tests <- list(cause = carr(rownames(fit$Tests)), stat = arr(fit$Tests[, "stat"]),
                      p_value = arr(fit$Tests[, "pv"]), df = arr(fit$Tests[, "df"]))
  }
  out
}

crr_out <- function(time, event, X, cause, profiles = NULL) {
  fit <- crr(time, event, X, failcode = cause, cencode = 0, gtol = 1e-12, maxiter = 100)
  default <- crr(time, event, X, failcode = cause, cencode = 0)
  s <- summary(fit)
  out <- list(
    terms = carr(names(fit$coef)),
    coef = arr(fit$coef),
    se = arr(sqrt(diag(fit$var))),
    z = arr(s$coef[, "z"]),
    p_value = arr(2 * pnorm(-abs(fit$coef / sqrt(diag(fit$var))))),
    var = fit$var,
    information = fit$inf,
    loglik = fit$loglik,
    loglik_null = fit$loglik.null,
    logtest = 2 * (fit$loglik - fit$loglik.null),
    converged = fit$converged,
    n = fit$n,
    uftime = arr(fit$uftime),
    bfitj = arr(fit$bfitj),
    score_residuals = fit$res,
    score = arr(fit$score),
    default_coef = arr(default$coef),
    default_converged = default$converged
  )
  if (!is.null(profiles)) {
    pr <- predict(fit, profiles)
    out$predict_time <- arr(pr[, 1])
    out$predict_cif <- unclass(pr[, -1, drop = FALSE])
  }
  out
}

# survival::finegray + weighted coxph. `rhs` is the model's right-hand side; `extra` is added
# to the coxph formula (strata(...)); `cluster` names the column for the robust variance.
finegray_out <- function(data, rhs, cause_label, extra = "", fg_strata = NULL, cluster = "id") {
  data$evf <- factor(data$event, levels = sort(unique(c(0, data$event))))
  fgf <- if (is.null(fg_strata)) as.formula("Surv(time, evf) ~ .") else
    as.formula(paste0("Surv(time, evf) ~ . + strata(", fg_strata, ")"))
  fg <- finegray(fgf, data = data, etype = cause_label, id = id)
  f_model <- as.formula(paste("Surv(fgstart, fgstop, fgstatus) ~", rhs, extra))
  f_robust <- as.formula(paste("Surv(fgstart, fgstop, fgstatus) ~", rhs, extra, "+ cluster(", cluster, ")"))
  out <- list(n_rows = nrow(fg))
  for (ties in c("breslow", "efron")) {
    ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
    model <- coxph(f_model, data = fg, weights = fgwt, ties = ties, control = ctl)
    robust <- coxph(f_robust, data = fg, weights = fgwt, ties = ties, control = ctl)
    out[[ties]] <- list(
      terms = carr(names(coef(model))),
      coef = arr(coef(model)),
      # coxph with non-integer weights reports a robust variance with each row its own
      # cluster in $var; the model-based (inverse information) variance is $naive.var
      se_model = arr(sqrt(diag(robust$naive.var))),
      se_robust = arr(sqrt(diag(robust$var))),
      var_model = robust$naive.var,
      var_robust = robust$var,
      loglik = arr(model$loglik)
    )
  }
  out
}

design <- function(formula, data) {
  X <- model.matrix(formula, data)[, -1, drop = FALSE]
  X
}

# ---- mgus2 -------------------------------------------------------------------------------------
times_mg <- sort(unique(c(mgus$etime, 12, 60, 120, 240, 0.5)))
X_mg <- design(~ age + sex, mgus)
ref <- list()
ref$mgus2 <- list(
  aj_sex = aj_out(mgus$etime, mgus$event, mgus$sex),
  cuminc_sex = cuminc_out(mgus$etime, mgus$event, mgus$sex, times_mg),
  cuminc_sex_strata_age70 = cuminc_out(mgus$etime, mgus$event, mgus$sex, times_mg, strata = mgus$age >= 70, estimates = FALSE),
  crr_pcm = crr_out(mgus$etime, mgus$event, X_mg, 1, profiles = rbind(c(60, 0), c(80, 1))),
  crr_death = crr_out(mgus$etime, mgus$event, X_mg, 2),
  finegray_pcm = finegray_out(transform(mgus, time = etime), "age + sex", "1")
)

# ---- Melanoma ----------------------------------------------------------------------------------
times_mel <- sort(unique(c(melanoma$time, 365, 730, 1825, 3650)))
X_mel <- design(~ sex + age + thickness + ulcer, melanoma)
ref$melanoma <- list(
  aj_ulcer = aj_out(melanoma$time, melanoma$event, melanoma$ulcer),
  aj_all = aj_out(melanoma$time, melanoma$event, rep("all", nrow(melanoma))),
  cuminc_ulcer = cuminc_out(melanoma$time, melanoma$event, melanoma$ulcer, times_mel),
  cuminc_ulcer_strata_sex = cuminc_out(melanoma$time, melanoma$event, melanoma$ulcer, times_mel, strata = melanoma$sex, estimates = FALSE),
  cuminc_ulcer_rho1 = cuminc_out(melanoma$time, melanoma$event, melanoma$ulcer, times_mel, rho = 1, estimates = FALSE),
  crr_melanoma = crr_out(melanoma$time, melanoma$event, X_mel, 1, profiles = rbind(c(0, 50, 2, 0), c(1, 60, 5, 1))),
  crr_other = crr_out(melanoma$time, melanoma$event, X_mel, 2),
  finegray_melanoma = finegray_out(melanoma, "sex + age + thickness + ulcer", "1")
)

# ---- the generated trial -----------------------------------------------------------------------
times_tr <- sort(unique(c(trial$time, 365, 730, 100.5)))
X_tr <- design(~ arm + age + prior + site, trial)
ref$trial <- list(
  aj_arm = aj_out(trial$time, trial$event, trial$arm, conf_types = c("log", "log-log", "plain", "logit", "arcsin")),
  aj_site = aj_out(trial$time, trial$event, trial$site),
  cuminc_arm = cuminc_out(trial$time, trial$event, trial$arm, times_tr),
  cuminc_site = cuminc_out(trial$time, trial$event, trial$site, times_tr),
  cuminc_arm_strata_site = cuminc_out(trial$time, trial$event, trial$arm, times_tr, strata = trial$site, estimates = FALSE),
  crr_reoffence = crr_out(trial$time, trial$event, X_tr, 1,
                          profiles = rbind(c(0, 25, 2, 0, 0), c(1, 25, 2, 0, 0))),
  crr_death = crr_out(trial$time, trial$event, X_tr, 2),
  crr_custody = crr_out(trial$time, trial$event, X_tr, 3),
  finegray_reoffence = finegray_out(trial, "arm + age + prior + site", "1"),
  finegray_reoffence_case = finegray_out(trial, "arm + age + prior + site", "1", cluster = "case_id"),
  finegray_reoffence_strata_site = finegray_out(trial, "arm + age + prior", "1",
                                                extra = "+ strata(site)", fg_strata = "site")
)

ref$versions <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
                     cmprsk = as.character(packageVersion("cmprsk")), MASS = as.character(packageVersion("MASS")))
writeLines(to_json(ref), out_file)
cat("wrote", out_file, "\n")
