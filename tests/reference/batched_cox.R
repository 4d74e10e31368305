# Reference numbers for rjtrial.survival.batched (cox_batch, logrank_batch).
#
# Generates a few replicate two-arm trials of different sizes and shapes (continuous
# times; whole days over a short range, so heavily tied; weeks; unequal arms; heavy
# censoring), fits each with survival::coxph (ties "efron" and "breslow", tight
# convergence) and survdiff, and writes the trials and the results to
# tests/reference/batched_cox.json. tests/test_survival_batched.py reads that file; the
# test suite never runs R.
#
# Run from the repository root:   Rscript tests/reference/batched_cox.R

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

set.seed(20261122)

make_trial <- function(n, share_treated, hazard_ratio, follow_up, scale, unit) {
  treatment <- rbinom(n, 1, share_treated)
  latent <- rexp(n, rate = ifelse(treatment == 1, hazard_ratio, 1) / scale)
  time <- pmin(latent, follow_up)
  if (unit > 0) time <- ceiling(time / unit) * unit
  data.frame(time = time, event = as.integer(latent <= follow_up), treatment = treatment)
}

specs <- list(
  list(label = "continuous times, no ties", n = 150, share = 0.5, hr = 0.7, follow = 2, scale = 1.5, unit = 0),
  list(label = "whole days over a month, heavy ties, 1:2 arms", n = 200, share = 2 / 3, hr = 0.75, follow = 30, scale = 40, unit = 1),
  list(label = "whole weeks over ten weeks, heavy ties", n = 80, share = 0.5, hr = 0.6, follow = 70, scale = 60, unit = 7),
  list(label = "whole days over two years, no effect", n = 300, share = 0.5, hr = 1, follow = 730, scale = 900, unit = 1),
  list(label = "small trial, 1:4 arms", n = 50, share = 0.2, hr = 0.5, follow = 365, scale = 300, unit = 1),
  list(label = "strong effect, heavy censoring", n = 120, share = 0.5, hr = 0.4, follow = 100, scale = 400, unit = 1)
)

tight <- coxph.control(eps = 1e-12, toler.chol = 1e-13, iter.max = 100)

fit_summary <- function(d, ties) {
  fit <- coxph(Surv(time, event) ~ treatment, data = d, ties = ties, control = tight)
  list(
    coef = unname(coef(fit)),
    std_error = unname(sqrt(fit$var[1, 1])),
    loglik_null = fit$loglik[1],
    loglik = fit$loglik[2],
    lr_statistic = 2 * (fit$loglik[2] - fit$loglik[1]),
    score_statistic = unname(fit$score),
    wald_statistic = unname(fit$wald.test),
    iterations = fit$iter
  )
}

trials <- lapply(seq_along(specs), function(k) {
  s <- specs[[k]]
  d <- make_trial(s$n, s$share, s$hr, s$follow, s$scale, s$unit)
  sd <- survdiff(Surv(time, event) ~ treatment, data = d)
  list(
    trial = k - 1,
    label = s$label,
    time = d$time,
    event = d$event,
    treatment = d$treatment,
    efron = fit_summary(d, "efron"),
    breslow = fit_summary(d, "breslow"),
    survdiff = list(
      observed = unname(sd$obs[2]),
      expected = unname(sd$exp[2]),
      variance = unname(sd$var[2, 2]),
      statistic = unname(sd$chisq)
    )
  )
})

out <- list(
  generated_by = "tests/reference/batched_cox.R",
  r_version = R.version.string,
  survival_version = as.character(packageVersion("survival")),
  control = "coxph.control(eps = 1e-12, toler.chol = 1e-13, iter.max = 100)",
  trials = trials
)

target <- file.path("tests", "reference", "batched_cox.json")
partial <- paste0(target, ".partial")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), partial)
invisible(file.rename(partial, target))
cat("wrote", target, "\n")
