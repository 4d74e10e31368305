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

source(file.path(here, "_survival_json.R"))  # num(), cox_out(), km_out(), rmst_out(), logrank_out()

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
