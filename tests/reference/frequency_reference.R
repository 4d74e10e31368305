# Reference numbers for rjtrial.frequency, rjtrial.victims, rjtrial.compliance and rjtrial.costs.
#
# Run from the repository root (needs r-base-core with MASS, metafor, AER, sandwich):
#
#     Rscript tests/reference/frequency_reference.R
#
# Reads   tests/reference/frequency_trial.csv   (make_frequency_trial.py, 500 participants)
# Writes  tests/reference/frequency_reference.json
#
# Every number is written with 17 significant digits (sprintf("%.17g")), so the JSON holds
# R's doubles exactly; NA is written as null. The test suite reads the JSON, never R.
# Fits use tight convergence (glm epsilon 1e-12); where a quantity can be computed two ways
# (a package and the formula written out), both are computed and must agree (stopifnot),
# and the formula's value is stored.

suppressPackageStartupMessages({
  library(MASS)
  library(metafor)
  library(AER)        # ivreg; loads sandwich and lmtest
})

here <- "tests/reference"
out_file <- file.path(here, "frequency_reference.json")

# ---- JSON: full-precision numbers ------------------------------------------------------------
fmt <- function(x) ifelse(is.na(x), "null", sprintf("%.17g", x))
js <- function(x) {
  if (is.list(x)) {
    if (!is.null(names(x))) {
      return(paste0("{", paste0('"', names(x), '":', vapply(x, js, ""), collapse = ","), "}"))
    }
    return(paste0("[", paste(vapply(x, js, ""), collapse = ","), "]"))
  }
  if (inherits(x, "AsIs")) x <- unclass(x)  # I(x): always an array
  if (is.character(x) || is.factor(x)) {
    body <- paste0('"', as.character(x), '"')
  } else if (is.logical(x)) {
    body <- ifelse(x, "true", "false")
  } else {
    body <- fmt(as.numeric(x))
  }
  if (length(x) == 1 && !isTRUE(attr(x, "array"))) body else paste0("[", paste(body, collapse = ","), "]")
}
arr <- function(x) { x <- unname(x); attr(x, "array") <- TRUE; x }
same <- function(a, b, tol = 1e-10) stopifnot(isTRUE(all.equal(as.numeric(a), as.numeric(b), tolerance = tol)))

d <- read.csv(file.path(here, "frequency_trial.csv"), stringsAsFactors = FALSE)
d$arm <- factor(d$arm, levels = c("control", "rj"))
d$site <- factor(d$site)
ctl <- glm.control(epsilon = 1e-12, maxit = 100)
z975 <- qnorm(0.975)
out <- list(meta = list(R = R.version.string, MASS = as.character(packageVersion("MASS")),
                        metafor = as.character(packageVersion("metafor")),
                        AER = as.character(packageVersion("AER")),
                        sandwich = as.character(packageVersion("sandwich")), n = nrow(d)))

# ---- rate ratios ---------------------------------------------------------------------------
glm_out <- function(fit) {
  est <- coef(fit); se <- sqrt(diag(vcov(fit)))
  ci <- exp(confint.default(fit))
  list(terms = arr(names(est)), coef = arr(est), se = arr(se), z = arr(est / se),
       p = arr(2 * pnorm(-abs(est / se))), ci_lower = arr(ci[, 1]), ci_upper = arr(ci[, 2]),
       loglik = as.numeric(logLik(fit)), iter = fit$iter, converged = fit$converged)
}
nb_out <- function(formula) {
  fit <- glm.nb(formula, data = d, control = ctl)
  res <- glm_out(fit)
  # theta.ml inside glm.nb stops at |step| < .Machine$double.eps^0.25 and reports the SE at
  # the iterate before its last step; polish both at the final fitted means.
  polished <- theta.ml(d$reoffences, fitted(fit), limit = 100, eps = 1e-14)
  stopifnot(abs(polished - fit$theta) < 1e-8)
  res$theta <- as.numeric(polished)
  res$se_theta <- attr(polished, "SE")
  res$theta_glm_nb <- fit$theta
  res$se_theta_glm_nb <- fit$SE.theta
  res$twologlik <- fit$twologlik
  default <- glm.nb(formula, data = d)  # R's default convergence, for the record
  res$default_max_abs_coef_diff <- max(abs(coef(default) - coef(fit)))
  res$default_abs_theta_diff <- abs(default$theta - fit$theta)
  res
}
# R: glm.nb(reoffences ~ arm + offset(log(exposure_days)), control = glm.control(1e-12, 100))
out$nb_simple <- nb_out(reoffences ~ arm + offset(log(exposure_days)))
# R: glm.nb(reoffences ~ arm + prior_offences + age + site + offset(log(exposure_days)))
out$nb_adjusted <- nb_out(reoffences ~ arm + prior_offences + age + site + offset(log(exposure_days)))
# R: glm(reoffences ~ arm + offset(log(exposure_days)), family = poisson)
out$poisson_simple <- glm_out(glm(reoffences ~ arm + offset(log(exposure_days)), family = poisson,
                                  data = d, control = ctl))
out$poisson_adjusted <- glm_out(glm(reoffences ~ arm + prior_offences + age + site + offset(log(exposure_days)),
                                    family = poisson, data = d, control = ctl))
out$rates <- list(group = arr(levels(d$arm)),
                  events = arr(tapply(d$reoffences, d$arm, sum)),
                  exposure = arr(tapply(d$exposure_days, d$arm, sum)),
                  rate = arr(tapply(d$reoffences, d$arm, sum) / tapply(d$exposure_days, d$arm, sum) * 365.25))

# ---- 2x2 measures: hand formulas, checked against metafor::escalc -----------------------------
two_by_two <- function(a, n1, c, n2) {
  b <- n1 - a; dd <- n2 - c
  add <- if (min(a, b, c, dd) == 0) 0.5 else 0
  A <- a + add; B <- b + add; C <- c + add; D <- dd + add
  N1 <- A + B; N2 <- C + D; p1 <- A / N1; p2 <- C / N2
  one <- function(est, se, ratio) {
    z <- est / se
    lo <- est - z975 * se; hi <- est + z975 * se
    if (ratio) list(estimate = exp(est), log_estimate = est, se = se, ci_lower = exp(lo), ci_upper = exp(hi),
                    z = z, p = 2 * pnorm(-abs(z)))
    else list(estimate = est, se = se, ci_lower = lo, ci_upper = hi, z = z, p = 2 * pnorm(-abs(z)))
  }
  rr <- one(log(p1 / p2), sqrt(1 / A - 1 / N1 + 1 / C - 1 / N2), TRUE)
  or <- one(log(A * D / (B * C)), sqrt(1 / A + 1 / B + 1 / C + 1 / D), TRUE)
  rd <- one(p1 - p2, sqrt(p1 * (1 - p1) / N1 + p2 * (1 - p2) / N2), FALSE)
  for (m in c("RR", "OR", "RD")) {
    e <- escalc(measure = m, ai = a, n1i = n1, ci = c, n2i = n2)
    mine <- switch(m, RR = rr, OR = or, RD = rd)
    same(e$yi, if (m == "RD") mine$estimate else mine$log_estimate, 1e-12)
    same(e$vi, mine$se^2, 1e-12)
  }
  list(counts = arr(c(a, n1, c, n2)), correction = add, risk_ratio = rr, odds_ratio = or, risk_difference = rd)
}
by_arm <- function(y) {
  rj <- d$arm == "rj"
  two_by_two(sum(y[rj]), sum(rj), sum(y[!rj]), sum(!rj))
}
# R: table(arm, event); formulas in two_by_two()
out$any_reoffence <- by_arm(d$event)
out$zero_cells <- list(
  first_empty = two_by_two(0, 20, 5, 22),
  control_empty = two_by_two(3, 15, 0, 17),
  no_events = two_by_two(0, 10, 0, 12),
  all_events = two_by_two(12, 12, 4, 10)
)

# ---- before-after standardised mean difference -----------------------------------------------
change <- d$reoffences - d$prior_offences
ct <- change[d$arm == "rj"]; cc <- change[d$arm == "control"]
nt <- length(ct); nc <- length(cc); m <- nt + nc - 2
sp <- sqrt(((nt - 1) * var(ct) + (nc - 1) * var(cc)) / m)
smd <- function(est) {
  se <- sqrt(1 / nt + 1 / nc + est^2 / (2 * (nt + nc)))
  list(estimate = est, se = se, ci_lower = est - z975 * se, ci_upper = est + z975 * se,
       z = est / se, p = 2 * pnorm(-abs(est / se)))
}
cohen <- (mean(ct) - mean(cc)) / sp
J <- exp(lgamma(m / 2) - log(sqrt(m / 2)) - lgamma((m - 1) / 2))
e <- escalc(measure = "SMD", m1i = mean(ct), sd1i = sd(ct), n1i = nt, m2i = mean(cc), sd2i = sd(cc), n2i = nc)
same(e$yi, J * cohen, 1e-12); same(e$vi, smd(J * cohen)$se^2, 1e-12)
out$before_after <- list(cohen_d = smd(cohen), hedges_g = smd(J * cohen), pooled_sd = sp,
                         mean_change = arr(c(mean(ct), mean(cc))), sd_change = arr(c(sd(ct), sd(cc))))

# ---- victims ---------------------------------------------------------------------------------
out$victims <- list(
  satisfied = by_arm(d$victim_satisfied),
  recommend = by_arm(d$victim_recommend),
  fearful = by_arm(d$victim_fearful),
  ies_above_25 = by_arm(as.integer(d$ies_followup >= 25))
)
lm_out <- function(fit) {
  s <- summary(fit)$coefficients; ci <- confint(fit)
  list(terms = arr(rownames(s)), coef = arr(s[, 1]), se = arr(s[, 2]), t = arr(s[, 3]), p = arr(s[, 4]),
       ci_lower = arr(ci[, 1]), ci_upper = arr(ci[, 2]), sigma = summary(fit)$sigma,
       r_squared = summary(fit)$r.squared, df_residual = fit$df.residual)
}
# R: lm(ies_followup ~ arm + ies_baseline)
out$ancova_simple <- lm_out(lm(ies_followup ~ arm + ies_baseline, data = d))
# R: lm(ies_followup ~ arm + ies_baseline + site)
out$ancova_site <- lm_out(lm(ies_followup ~ arm + ies_baseline + site, data = d))

# ---- compliance: ITT and CACE ----------------------------------------------------------------
cace_out <- function(rhs_w) {
  w <- if (rhs_w == "") "" else paste("+", rhs_w)
  f_y <- as.formula(paste("reoffences ~ arm", w))
  f_d <- as.formula(paste("treatment_received ~ arm", w))
  itt_y <- lm(f_y, data = d); itt_d <- lm(f_d, data = d)
  n <- nrow(d)
  # 2SLS written out: first stage, fitted D, second-stage coefficients, then the variance with
  # residuals from the observed D (not the second-stage lm's residuals).
  dd <- d; dd$dhat <- fitted(itt_d)
  stage2 <- lm(as.formula(paste("reoffences ~ dhat", w)), data = dd)
  beta <- coef(stage2)
  Xhat <- model.matrix(stage2)
  X <- Xhat; X[, "dhat"] <- d$treatment_received
  u <- d$reoffences - drop(X %*% beta)
  k <- ncol(X)
  bread <- solve(crossprod(Xhat))
  v_classic <- sum(u^2) / (n - k) * bread
  v_hc1 <- n / (n - k) * bread %*% crossprod(Xhat * u) %*% bread
  # the same from AER::ivreg and sandwich
  iv <- ivreg(as.formula(paste("reoffences ~ treatment_received", w, "| arm", w)), data = d)
  same(coef(iv), beta, 1e-10)
  same(sqrt(diag(vcov(iv))), sqrt(diag(v_classic)), 1e-10)
  same(sqrt(diag(vcovHC(iv, type = "HC1"))), sqrt(diag(v_hc1)), 1e-10)
  wald <- coef(itt_y)[["armrj"]] / coef(itt_d)[["armrj"]]
  same(wald, beta[["dhat"]], 1e-10)
  row <- function(est, se, df) {
    t <- est / se; q <- qt(0.975, df)
    list(estimate = est, se = se, ci_lower = est - q * se, ci_upper = est + q * se, t = t,
         p = 2 * pt(-abs(t), df), df = df)
  }
  res <- list()
  for (type in c("unadjusted", "robust")) {
    vy <- if (type == "robust") vcovHC(itt_y, type = "HC1") else vcov(itt_y)
    vd <- if (type == "robust") vcovHC(itt_d, type = "HC1") else vcov(itt_d)
    vi <- if (type == "robust") v_hc1 else v_classic
    first <- row(coef(itt_d)[["armrj"]], sqrt(vd["armrj", "armrj"]), n - k)
    res[[type]] <- list(
      itt_outcome = row(coef(itt_y)[["armrj"]], sqrt(vy["armrj", "armrj"]), n - k),
      itt_uptake = first,
      cace = row(beta[["dhat"]], sqrt(vi["dhat", "dhat"]), n - k),
      first_stage_f = first$t^2,
      first_stage_f_p = pf(first$t^2, 1, n - k, lower.tail = FALSE)
    )
  }
  # AER's weak-instrument test (classic covariance) is the same F
  diag_iv <- summary(iv, diagnostics = TRUE)$diagnostics
  same(diag_iv["Weak instruments", "statistic"], res$unadjusted$first_stage_f, 1e-10)
  res$wald_ratio <- wald
  res
}
# R: ivreg(reoffences ~ treatment_received | arm)
out$cace_simple <- cace_out("")
# R: ivreg(reoffences ~ treatment_received + prior_offences + age + site | arm + prior_offences + age + site)
out$cace_adjusted <- cace_out("prior_offences + age + site")

# ---- observed vs expected --------------------------------------------------------------------
oe <- list()
for (g in levels(d$arm)) {
  O <- sum(d$event[d$arm == g]); E <- sum(d$risk_score[d$arm == g])
  pt1 <- poisson.test(O, E)
  oe[[g]] <- list(observed = O, expected = E, estimate = unname(pt1$estimate),
                  ci_lower = pt1$conf.int[1], ci_upper = pt1$conf.int[2], p = pt1$p.value)
}
O <- c(oe$rj$observed, oe$control$observed); E <- c(oe$rj$expected, oe$control$expected)
pt2 <- poisson.test(O, E)
# R: poisson.test(O, E) per arm; poisson.test(c(O_rj, O_control), c(E_rj, E_control))
out$observed_expected <- list(arms = oe, comparison = list(estimate = unname(pt2$estimate),
  ci_lower = pt2$conf.int[1], ci_upper = pt2$conf.int[2], p = pt2$p.value))
# small counts, where the exact p-value's search matters
out$poisson_exact_small <- lapply(list(c(0, 2.5), c(1, 4.2), c(7, 3.1), c(3, 3)), function(x) {
  t <- poisson.test(x[1], x[2])
  list(x = x[1], expected = x[2], ci_lower = t$conf.int[1], ci_upper = t$conf.int[2], p = t$p.value)
})

# ---- costs: point estimate (illustrative unit costs, not estimates of anything) ----------------
unit <- c(violence = 10000, property = 3000, other = 1000)
counts <- as.matrix(d[, paste0("reoffences_", names(unit))])
n_t <- sum(d$arm == "rj")
prevented <- n_t * (colMeans(counts[d$arm == "control", ]) - colMeans(counts[d$arm == "rj", ]))
out$costs <- list(unit_cost = as.list(unit), programme_cost_per_participant = 2000,
                  prevented = arr(prevented), benefit = sum(prevented * unit),
                  ratio = sum(prevented * unit) / (2000 * n_t))

writeLines(js(out), out_file)
cat("wrote", out_file, "\n")
