# Reference numbers for the two-stage IPD meta-analysis (rjtrial.meta.ipd.two_stage + meta.pool).
#
# Run from the repository root after tests/reference/meta_ipd.py has written meta_ipd.csv:
#   Rscript tests/reference/meta_ipd.R
# Writes tests/reference/meta_ipd.json (15 significant digits):
#   per_trial[[measure]]: yi, vi per trial (in the order of first appearance in the CSV);
#   pooled[[measure]][[method]]: rma() on those yi, vi, with confint() (Q-profile).
# Stage 1, per trial, arm coded factor(levels = c(control, "conference")):
#   log_hazard_ratio          coxph(Surv(time_at_risk, event) ~ arm, ties = "efron")
#   log_hazard_ratio_adjusted coxph(... ~ arm + age + prior_offences)
#   log_rate_ratio            glm.nb(reoffences ~ arm + offset(log(exposure_days))), theta polished (nb_fit)
#   log_rate_ratio_poisson    glm(..., family = poisson)
#   log_rate_ratio_adjusted   glm.nb(reoffences ~ arm + age + prior_offences + offset(log(exposure_days)))
#   (count models: variance = inverse expected information at the estimate, see information_variance)
#   log_risk_ratio, log_odds_ratio, risk_difference
#                             escalc("RR" | "OR" | "RD", any reoffence (event) by arm; add 1/2 to zero cells only)
suppressPackageStartupMessages({library(survival); library(MASS); library(metafor); library(jsonlite)})

d <- read.csv("tests/reference/meta_ipd.csv", stringsAsFactors = FALSE)
trials <- unique(d$trial)
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
glm_ctl <- glm.control(epsilon = 1e-12, maxit = 100)
cox_ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)

# Variance of a count model's coefficients: the inverse expected information at the estimate,
# (X' W X)^-1 with W = mu (Poisson) or mu / (1 + mu / theta) (negative binomial, theta fixed),
# computed at the fitted means (vcov(glm) uses the weights of the iterate before the last, off
# by ~1e-7 relative at epsilon = 1e-12).
information_variance <- function(fit, w, term) solve(crossprod(model.matrix(fit), model.matrix(fit) * w))[term, term]

# glm.nb's theta stops at |step| < .Machine$double.eps^0.25: alternate theta.ml (eps = 1e-14) and the
# glm given theta until theta settles, for the joint maximum likelihood.
nb_fit <- function(formula, x, term) {
  fit <- glm.nb(formula, data = x, control = glm_ctl)
  theta <- fit$theta
  start <- coef(fit)
  for (i in 1:100) {
    g <- glm(formula, family = negative.binomial(theta), data = x, start = start, control = glm_ctl)
    start <- coef(g)
    new <- as.numeric(theta.ml(x$reoffences, fitted(g), limit = 100, eps = 1e-14))
    settled <- abs(new - theta) < 1e-13 * theta
    theta <- new
    if (settled) break
  }
  g <- glm(formula, family = negative.binomial(theta), data = x, start = start, control = glm_ctl)
  mu <- fitted(g)
  c(unname(coef(g)[term]), information_variance(g, mu / (1 + mu / theta), term))
}

poisson_fit <- function(formula, x, term) {
  g <- glm(formula, family = poisson, data = x, control = glm_ctl)
  c(unname(coef(g)[term]), information_variance(g, fitted(g), term))
}

one_trial <- function(t) {
  x <- d[d$trial == t, ]
  control <- setdiff(unique(x$arm), "conference")
  x$arm <- factor(x$arm, levels = c(control, "conference"))
  term <- "armconference"
  out <- list()
  take <- function(fit) c(unname(coef(fit)[term]), vcov(fit)[term, term])
  out$log_hazard_ratio <- take(coxph(Surv(time_at_risk, event) ~ arm, data = x, ties = "efron", control = cox_ctl))
  out$log_hazard_ratio_adjusted <- take(coxph(Surv(time_at_risk, event) ~ arm + age + prior_offences, data = x,
                                              ties = "efron", control = cox_ctl))
  out$log_rate_ratio <- nb_fit(reoffences ~ arm + offset(log(exposure_days)), x, term)
  out$log_rate_ratio_poisson <- poisson_fit(reoffences ~ arm + offset(log(exposure_days)), x, term)
  out$log_rate_ratio_adjusted <- nb_fit(reoffences ~ arm + age + prior_offences + offset(log(exposure_days)), x, term)
  ai <- sum(x$event[x$arm == "conference"] > 0); n1 <- sum(x$arm == "conference")
  ci <- sum(x$event[x$arm == control] > 0); n2 <- sum(x$arm == control)
  escalc_measure <- c(log_risk_ratio = "RR", log_odds_ratio = "OR", risk_difference = "RD")
  for (m in names(escalc_measure)) {
    es <- escalc(escalc_measure[[m]], ai = ai, n1i = n1, ci = ci, n2i = n2, add = 1/2, to = "only0")
    out[[m]] <- c(es$yi[1], es$vi[1])
  }
  out
}

fits <- lapply(trials, one_trial)
measures <- names(fits[[1]])
per_trial <- list(); pooled <- list()
for (m in measures) {
  yi <- sapply(fits, function(f) f[[m]][1]); vi <- sapply(fits, function(f) f[[m]][2])
  per_trial[[m]] <- list(yi = yi, vi = vi)
  pooled[[m]] <- list()
  for (method in c("REML", "DL", "FE")) {
    res <- rma(yi, vi, method = method, control = CTRL)
    row <- list(beta = unname(coef(res)), se = res$se, zval = res$zval, pval = res$pval, ci_lb = res$ci.lb,
                ci_ub = res$ci.ub, tau2 = res$tau2, I2 = res$I2, H2 = res$H2, QE = res$QE, QEp = res$QEp)
    if (method != "FE") {
      ci <- confint(res, control = list(tol = 1e-12, maxiter = 10000))$random
      row$tau2_ci <- unname(ci["tau^2", c("ci.lb", "ci.ub")])
      row$I2_ci <- unname(ci["I^2(%)", c("ci.lb", "ci.ub")])
    }
    pooled[[m]][[method]] <- row
  }
}
out <- list(R = R.version.string, packages = list(survival = as.character(packageVersion("survival")),
            MASS = as.character(packageVersion("MASS")), metafor = as.character(packageVersion("metafor"))),
            trials = trials, per_trial = per_trial, pooled = pooled)
tmp <- "tests/reference/meta_ipd.json.tmp"
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE), tmp)
invisible(file.rename(tmp, "tests/reference/meta_ipd.json"))
cat("wrote tests/reference/meta_ipd.json\n")
