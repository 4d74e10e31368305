# Reference numbers for rjtrial.survival.batched.rmst_batch and negative_binomial_batch,
# on datasets that ship with R (exported beside this script as CSV, so the test suite
# never runs R):
#
# * RMST: survival::veteran (trt 2 vs 1; tau 100, 365, 553) and survival::lung
#   (sex 2 vs 1; tau 200, 500, 965): restricted mean of each arm's Kaplan-Meier curve and
#   its standard error, from summary(survfit(...), rmean = tau)$table (survival:::survmean).
# * NB2 rate ratio: MASS::quine (Days ~ aboriginal, no offset) and MASS::Insurance
#   (Claims ~ young + offset(log(Holders)); young = Age "<25"; and Claims ~ big, big =
#   Group "1.5-2l" or ">2l"), and datasets::InsectSprays (count ~ spray, two sprays at a
#   time: E vs D, counts close to Poisson with theta near 660, and B vs A, theta near 57),
#   by MASS::glm.nb with tight convergence.
#
# Run from the repository root:   Rscript tests/reference/batched_rmst_nb.R

suppressPackageStartupMessages({
  library(survival)
  library(MASS)
  library(jsonlite)
})

here <- "tests/reference"

veteran_csv <- data.frame(time = veteran$time, status = veteran$status, treated = as.integer(veteran$trt == 2))
lung_csv <- data.frame(time = lung$time, status = as.integer(lung$status == 2), treated = as.integer(lung$sex == 2))
quine_csv <- data.frame(days = quine$Days, aboriginal = as.integer(quine$Eth == "A"))
insurance_csv <- data.frame(claims = Insurance$Claims, holders = Insurance$Holders,
                            young = as.integer(Insurance$Age == "<25"),
                            big = as.integer(Insurance$Group %in% c("1.5-2l", ">2l")))
insect_csv <- data.frame(count = InsectSprays$count, spray = as.character(InsectSprays$spray))
insect_pair <- function(control, treated) {
  d <- subset(insect_csv, spray %in% c(control, treated))
  data.frame(count = d$count, treated = as.integer(d$spray == treated))
}
write.csv(veteran_csv, file.path(here, "survival_veteran.csv"), row.names = FALSE)
write.csv(lung_csv, file.path(here, "survival_lung.csv"), row.names = FALSE)
write.csv(quine_csv, file.path(here, "mass_quine.csv"), row.names = FALSE)
write.csv(insurance_csv, file.path(here, "mass_insurance.csv"), row.names = FALSE)
write.csv(insect_csv, file.path(here, "datasets_insectsprays.csv"), row.names = FALSE)

rmst_case <- function(label, d, tau) {
  fit <- survfit(Surv(time, status) ~ treated, data = d)
  table <- summary(fit, rmean = tau)$table
  list(label = label, tau = tau,
       rmst_control = unname(table[1, "rmean"]), std_error_control = unname(table[1, "se(rmean)"]),
       rmst_treated = unname(table[2, "rmean"]), std_error_treated = unname(table[2, "se(rmean)"]),
       call = sprintf("summary(survfit(Surv(time, status) ~ treated, data = %s), rmean = %s)$table", label, tau))
}

tight <- glm.control(epsilon = 1e-12, maxit = 500)  # 1e-14 never meets glm.nb's alternation test; 1e-12 agrees with 1e-13 to 1e-15
nb_case <- function(label, formula, d) {
  fit <- glm.nb(formula, data = d, control = tight)
  coefs <- summary(fit)$coefficients
  list(label = label, estimate = unname(coefs[2, "Estimate"]), std_error = unname(coefs[2, "Std. Error"]),
       statistic = unname(coefs[2, "z value"]), p_value = unname(coefs[2, "Pr(>|z|)"]),
       dispersion = 1 / fit$theta, theta = fit$theta, converged = fit$converged,
       call = paste0("glm.nb(", deparse(formula), ", control = glm.control(epsilon = 1e-12, maxit = 500))"))
}

out <- list(
  versions = list(R = R.version.string, survival = as.character(packageVersion("survival")),
                  MASS = as.character(packageVersion("MASS"))),
  rmst = list(
    rmst_case("veteran", veteran_csv, 100), rmst_case("veteran", veteran_csv, 365),
    rmst_case("veteran", veteran_csv, 553),
    rmst_case("lung", lung_csv, 200), rmst_case("lung", lung_csv, 500), rmst_case("lung", lung_csv, 965)
  ),
  negative_binomial = list(
    c(nb_case("quine", days ~ aboriginal, quine_csv), list(data = "mass_quine.csv", count = "days",
      group = "aboriginal", exposure = NULL)),
    c(nb_case("insurance_young", claims ~ young + offset(log(holders)), insurance_csv),
      list(data = "mass_insurance.csv", count = "claims", group = "young", exposure = "holders")),
    c(nb_case("insurance_big", claims ~ big + offset(log(holders)), insurance_csv),
      list(data = "mass_insurance.csv", count = "claims", group = "big", exposure = "holders")),
    c(nb_case("insectsprays_E_vs_D", count ~ treated, insect_pair("D", "E")),
      list(data = "datasets_insectsprays.csv", count = "count", group = "spray", exposure = NULL,
           control = "D", treated = "E")),
    c(nb_case("insectsprays_B_vs_A", count ~ treated, insect_pair("A", "B")),
      list(data = "datasets_insectsprays.csv", count = "count", group = "spray", exposure = NULL,
           control = "A", treated = "B"))
  )
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "batched_rmst_nb.json"))
