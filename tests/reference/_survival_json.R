# Shared by the survival reference scripts: full-precision JSON and the extractors of coxph,
# survfit and survdiff results. Sourced with source(file.path("tests/reference", "_survival_json.R")).

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

