# Reference numbers for rjtrial.survival, computed with R's `survival` package.
#
# Run from the repository root (needs r-base-core, r-cran-survival, jsonlite):
#
#     Rscript tests/reference/survival_reference.R
#
# Reads   tests/reference/km_small.csv                   (17 hand-made rows: medians on flat stretches)
#         tests/reference/rossi.csv                      (Rossi, Berk & Lenihan 1980; the
#                                                         lifelines copy, identical to carData::Rossi
#                                                         recoded to 0/1 -- checked below when
#                                                         carData is installed)
#         tests/reference/survival_trial.csv             (make_survival_trial.py)
#         tests/reference/survival_trial_recurrent.csv   (make_survival_trial.py)
# Writes  tests/reference/survival_reference.json
#
# Every number is written with 17 significant digits (sprintf("%.17g")), so the JSON holds
# R's doubles exactly; NA is written as null and +-Inf as the strings "Inf" / "-Inf".
# The test suite reads the JSON and never needs R.

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

here <- "tests/reference"
out_file <- file.path(here, "survival_reference.json")

# ---- JSON helpers: full-precision numbers -------------------------------------------------
fmt <- function(x) {
  ifelse(is.na(x), "null",
         ifelse(is.infinite(x), ifelse(x > 0, '"Inf"', '"-Inf"'), sprintf("%.17g", x)))
}
# A numeric vector as JSON: named -> object, length-1 unnamed -> scalar, else array.
num <- function(x, scalar = TRUE) {
  x <- as.numeric(unname_if_empty(x))
  nm <- names(x)
  if (!is.null(nm)) {
    body <- paste0('"', nm, '":', fmt(x), collapse = ",")
    txt <- paste0("{", body, "}")
  } else if (scalar && length(x) == 1) {
    txt <- fmt(x)
  } else {
    txt <- paste0("[", paste(fmt(x), collapse = ","), "]")
  }
  structure(txt, class = "json")
}
unname_if_empty <- function(x) { if (!is.null(names(x)) && all(names(x) == "")) unname(x) else x }
# A numeric matrix as an array of rows.
nummat <- function(m) {
  rows <- vapply(seq_len(nrow(m)), function(i) paste0("[", paste(fmt(m[i, ]), collapse = ","), "]"), "")
  structure(paste0("[", paste(rows, collapse = ","), "]"), class = "json")
}
named <- function(x, names) { x <- as.numeric(x); names(x) <- names; x }

# ---- extractors ----------------------------------------------------------------------------
test_out <- function(stat, df) {
  list(statistic = num(stat), df = num(df), p_value = num(pchisq(stat, df, lower.tail = FALSE)))
}

cox_out <- function(fit, zph = TRUE) {
  s <- summary(fit)
  robust <- !is.null(fit$naive.var)
  df <- sum(!is.na(coef(fit)))
  out <- list(
    terms = names(coef(fit)),
    coef = num(coef(fit)),
    se = num(sqrt(diag(fit$var)) |> named(names(coef(fit)))),
    z = num(s$coefficients[, "z"]),
    p = num(s$coefficients[, "Pr(>|z|)"]),
    hazard_ratio = num(s$conf.int[, "exp(coef)"]),
    hr_lower = num(s$conf.int[, "lower .95"]),
    hr_upper = num(s$conf.int[, "upper .95"]),
    var = nummat(fit$var),
    loglik = num(fit$loglik, scalar = FALSE),
    iter = num(fit$iter),
    n = num(fit$n),
    nevent = num(fit$nevent),
    # the statistics straight from the fit: summary.coxph() rounds the Wald test to 2 decimals
    logtest = test_out(2 * (fit$loglik[2] - fit$loglik[1]), df),
    waldtest = test_out(fit$wald.test, df),
    sctest = test_out(fit$score, df),
    concordance = num(fit$concordance[c("concordant", "discordant", "tied.x", "tied.y", "tied.xy", "concordance")])
  )
  if (robust) {
    out$naive_se <- num(sqrt(diag(fit$naive.var)) |> named(names(coef(fit))))
    out$robscore <- test_out(fit$rscore, df)
  }
  # R's default convergence (eps = 1e-9 on the relative change in the log-likelihood)
  # against a tight refit: how far R's own default answer is from the optimum.
  tight <- update(fit, control = coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100))
  out$max_abs_coef_change_tight_refit <- num(max(abs(coef(tight) - coef(fit))))
  out$coef_tight_refit <- num(unname(coef(tight)), scalar = FALSE)
  if (zph) {
    z <- cox.zph(fit, transform = "km", terms = TRUE)
    out$zph_km <- list(
      terms = rownames(z$table),
      chisq = num(z$table[, "chisq"]),
      df = num(z$table[, "df"]),
      p = num(z$table[, "p"])
    )
    zr <- cox.zph(fit, transform = "rank", terms = TRUE)
    out$zph_rank <- list(terms = rownames(zr$table), chisq = num(zr$table[, "chisq"]),
                         df = num(zr$table[, "df"]), p = num(zr$table[, "p"]))
  }
  out
}

group_labels <- function(sf) {
  if (is.null(sf$strata)) return(rep("all", length(sf$time)))
  rep(sub("^[^=]*=", "", names(sf$strata)), sf$strata)
}

km_out <- function(sf, times) {
  q <- quantile(sf, probs = 0.5)
  tab <- summary(sf)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list("all", names(tab)))
  st <- summary(sf, times = times)
  list(
    table = list(
      group = group_labels(sf),
      time = num(sf$time, scalar = FALSE),
      n_risk = num(sf$n.risk, scalar = FALSE),
      n_event = num(sf$n.event, scalar = FALSE),
      n_censor = num(sf$n.censor, scalar = FALSE),
      surv = num(sf$surv, scalar = FALSE),
      std_err_cumhaz = num(sf$std.err, scalar = FALSE),   # R's std.err: SE of -log S
      lower = num(sf$lower, scalar = FALSE),
      upper = num(sf$upper, scalar = FALSE)
    ),
    median = list(
      group = sub("^[^=]*=", "", rownames(tab)),
      quantile = num(as.numeric(q$quantile), scalar = FALSE),
      lower = num(as.numeric(q$lower), scalar = FALSE),
      upper = num(as.numeric(q$upper), scalar = FALSE),
      print_median = num(tab[, "median"], scalar = FALSE),
      print_lcl = num(tab[, "0.95LCL"], scalar = FALSE),
      print_ucl = num(tab[, "0.95UCL"], scalar = FALSE)
    ),
    at_times = list(
      group = if (is.null(st$strata)) rep("all", length(st$time)) else sub("^[^=]*=", "", as.character(st$strata)),
      time = num(st$time, scalar = FALSE),
      n_risk = num(st$n.risk, scalar = FALSE),
      surv = num(st$surv, scalar = FALSE),
      std_err = num(st$std.err, scalar = FALSE),        # summary(): SE of S itself
      lower = num(st$lower, scalar = FALSE),
      upper = num(st$upper, scalar = FALSE)
    )
  )
}

rmst_out <- function(sf, tau) {
  tab <- summary(sf, rmean = tau)$table
  sm <- survival:::survmean(sf, rmean = tau)$matrix
  rmean <- tab[, "rmean"]
  se <- tab[, "se(rmean)"]
  diff <- rmean[2] - rmean[1]
  diff_se <- sqrt(se[1]^2 + se[2]^2)
  z <- diff / diff_se
  list(
    tau = num(tau),
    group = sub("^[^=]*=", "", rownames(tab)),
    rmean = num(unname(rmean), scalar = FALSE),
    se = num(unname(se), scalar = FALSE),
    survmean_rmean = num(unname(sm[, "rmean"]), scalar = FALSE),
    survmean_se = num(unname(sm[, "se(rmean)"]), scalar = FALSE),
    # second group minus first; SE = sqrt of the sum of the two variances
    difference = num(unname(diff)),
    difference_se = num(unname(diff_se)),
    difference_lower = num(unname(diff - qnorm(0.975) * diff_se)),
    difference_upper = num(unname(diff + qnorm(0.975) * diff_se)),
    difference_z = num(unname(z)),
    difference_p = num(unname(2 * pnorm(-abs(z))))
  )
}

logrank_out <- function(sd) {
  df <- length(sd$n) - 1
  list(
    chisq = num(sd$chisq),
    df = num(df),
    p = num(pchisq(sd$chisq, df, lower.tail = FALSE)),
    group = sub("^[^=]*=", "", names(sd$n)),
    n = num(as.numeric(sd$n), scalar = FALSE),
    observed = num(if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs, scalar = FALSE),
    expected = num(if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp, scalar = FALSE),
    var = nummat(as.matrix(sd$var))
  )
}

# ---- Rossi -------------------------------------------------------------------------------
rossi <- read.csv(file.path(here, "rossi.csv"))
carData_check <- "carData not installed"
if (requireNamespace("carData", quietly = TRUE)) {
  R <- carData::Rossi
  recoded <- with(R, data.frame(week, arrest, fin = as.integer(fin == "yes"), age,
                                race = as.integer(race == "black"), wexp = as.integer(wexp == "yes"),
                                mar = as.integer(mar == "married"), paro = as.integer(paro == "yes"), prio))
  carData_check <- if (isTRUE(all.equal(recoded, rossi, check.attributes = FALSE)))
    "identical to carData::Rossi (fin, race, wexp, mar, paro recoded to 0/1; race = 1 for black)" else
    "DIFFERS from carData::Rossi"
}

rossi_formula <- Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio
rossi_efron <- coxph(rossi_formula, data = rossi)
rossi_breslow <- coxph(rossi_formula, data = rossi, ties = "breslow")
rossi_robust <- coxph(rossi_formula, data = rossi, robust = TRUE)
rossi_km <- survfit(Surv(week, arrest) ~ fin, data = rossi, conf.type = "log-log")
rossi_km_all <- survfit(Surv(week, arrest) ~ 1, data = rossi, conf.type = "log-log")

# ---- generated trial ---------------------------------------------------------------------
trial <- read.csv(file.path(here, "survival_trial.csv"))
trial$arm <- factor(trial$arm, levels = c("control", "rj"))
rec <- read.csv(file.path(here, "survival_trial_recurrent.csv"))
rec$arm <- factor(rec$arm, levels = c("control", "rj"))

trial_strat <- coxph(Surv(time, event) ~ arm + age + prior + strata(site), data = trial)
trial_cluster <- coxph(Surv(time, event) ~ arm + age + prior + strata(site) + cluster(case_id), data = trial)
trial_cluster_breslow <- coxph(Surv(time, event) ~ arm + age + prior + strata(site) + cluster(case_id),
                               data = trial, ties = "breslow")
trial_km <- survfit(Surv(time, event) ~ arm, data = trial, conf.type = "log-log")
ag <- coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), data = rec)
ag_strat <- coxph(Surv(start, stop, event) ~ arm + age + prior + strata(site) + cluster(id), data = rec)
ag_breslow <- coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), data = rec, ties = "breslow")

# ---- a tiny hand-made data set for the median rules (flat at exactly 0.5; last point) -------
small <- read.csv(file.path(here, "km_small.csv"))
small_km <- survfit(Surv(time, event) ~ group, data = small, conf.type = "log-log")

reference <- list(
  meta = list(
    r_version = R.version.string,
    survival_version = as.character(packageVersion("survival")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    script = "tests/reference/survival_reference.R",
    rossi_source = paste("Rossi, Berk & Lenihan (1980); lifelines.datasets.load_rossi();", carData_check)
  ),
  rossi = list(
    cox_efron = cox_out(rossi_efron),
    cox_breslow = cox_out(rossi_breslow, zph = FALSE),
    cox_robust = cox_out(rossi_robust, zph = FALSE),
    km_fin = km_out(rossi_km, times = c(0.5, 10, 26, 40, 52)),
    km_all = km_out(rossi_km_all, times = c(10, 26, 52)),
    logrank_fin = logrank_out(survdiff(Surv(week, arrest) ~ fin, data = rossi)),
    rmst_fin_52 = rmst_out(rossi_km, 52),
    rmst_fin_30 = rmst_out(rossi_km, 30.5)
  ),
  trial = list(
    cox_strata = cox_out(trial_strat),
    cox_cluster = cox_out(trial_cluster, zph = FALSE),
    cox_cluster_breslow = cox_out(trial_cluster_breslow, zph = FALSE),
    km_arm = km_out(trial_km, times = c(90, 180, 365, 730)),
    logrank_arm = logrank_out(survdiff(Surv(time, event) ~ arm, data = trial)),
    logrank_arm_strata = logrank_out(survdiff(Surv(time, event) ~ arm + strata(site), data = trial)),
    logrank_site = logrank_out(survdiff(Surv(time, event) ~ site, data = trial)),
    rmst_arm_365 = rmst_out(trial_km, 365),
    rmst_arm_730 = rmst_out(trial_km, 730),
    andersen_gill = cox_out(ag),
    andersen_gill_strata = cox_out(ag_strat),
    andersen_gill_breslow = cox_out(ag_breslow, zph = FALSE)
  ),
  small = list(
    km_group = km_out(small_km, times = c(0, 1, 2.5, 4, 6)),
    logrank_group = logrank_out(survdiff(Surv(time, event) ~ group, data = small))
  )
)

writeLines(toJSON(reference, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE), out_file)
cat("wrote", out_file, "with R", R.version.string, "and survival", as.character(packageVersion("survival")), "\n")
