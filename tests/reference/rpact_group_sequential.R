# Reference numbers for rjtrial.monitor: group-sequential designs and interim looks, from R rpact.
#
# Run from the repository root (needs r-cran-rpact 3.3, r-cran-survival, jsonlite):
#
#     Rscript tests/reference/rpact_group_sequential.R
#
# Writes tests/reference/rpact_group_sequential.json:
#   designs: 12 designs (2 to 5 looks; O'Brien-Fleming, Pocock, Hwang-Shih-DeCani gamma -4, -2, 1
#            and Kim-DeMets alpha spending; with and without a futility boundary, binding and not;
#            equal and unequal information fractions; 1:1, 2:1 and 3:2 allocation), each with its
#            boundaries and spending (getDesignGroupSequential), characteristics
#            (getDesignCharacteristics) and events (getSampleSizeSurvival);
#   looks:   interim and final looks of those designs at information fractions other than the
#            planned ones (the design recomputed at the actual fractions; asUser spending for a
#            final look that spends all the alpha before the maximum is reached), with
#            conditional power (getConditionalPower) and repeated confidence intervals
#            (getRepeatedConfidenceIntervals); futility bounds at a look spend the beta at the
#            actual fractions under the design's drift, found here by uniroot on rpact's
#            getGroupSequentialProbabilities with the bounds shifted by the drift;
#   rossi:   a two-look design applied to Rossi et al.'s data (tests/reference/rossi.csv): the
#            interim look at week 26 (survdiff on the data censored there) and the final at 52.
#
# Every rpact design is computed with tolerance = 1e-10 (its default 1e-8 is looser than the
# comparison) and every root here with tol = 1e-13. The test suite reads the JSON, never R.

suppressPackageStartupMessages({
  library(rpact)
  library(survival)
  library(jsonlite)
})

here <- "tests/reference"
out_file <- file.path(here, "rpact_group_sequential.json")
TOL <- 1e-10
num <- function(x) as.numeric(unname(x))
rpact_name <- c("obrien-fleming" = "OF", "pocock" = "P", "hsd" = "HSD", "kim-demets" = "KD")

# A spending name as rjtrial reads it ("hsd:-4") -> rpact's type and parameter.
spending <- function(name) {
  parts <- strsplit(name, ":", fixed = TRUE)[[1]]
  list(type = rpact_name[[parts[1]]], parameter = if (length(parts) > 1) as.numeric(parts[2]) else NA_real_)
}

# getDesignGroupSequential for rjtrial's settings (information rates may be overridden).
rpact_design <- function(s, informationRates = NULL, futilityBounds = NULL, userAlphaSpending = NULL) {
  sp <- spending(s$spending)
  sided <- if (s$alternative == "two-sided") 2L else 1L
  args <- list(kMax = if (is.null(informationRates)) s$looks else length(informationRates),
               alpha = s$alpha, beta = 1 - s$power, sided = sided, tolerance = TOL,
               informationRates = if (is.null(informationRates)) (if (is.null(s$information))
                 seq_len(s$looks) / s$looks else unlist(s$information)) else informationRates)
  if (!is.null(userAlphaSpending)) {
    args$typeOfDesign <- "asUser"
    args$userAlphaSpending <- userAlphaSpending
  } else {
    args$typeOfDesign <- paste0("as", sp$type)
    if (sp$type == "HSD") args$gammaA <- sp$parameter
    if (sp$type == "KD") args$gammaA <- sp$parameter
  }
  if (!is.null(futilityBounds)) {
    args$futilityBounds <- futilityBounds
    args$bindingFutility <- isTRUE(s$binding)
  } else if (!is.null(s$futility)) {
    fp <- spending(s$futility)
    args$typeBetaSpending <- paste0("bs", fp$type)
    if (fp$type == "HSD") args$gammaB <- fp$parameter
    if (fp$type == "KD") args$gammaB <- fp$parameter
    args$bindingFutility <- isTRUE(s$binding)
  }
  if (args$kMax == 1) args$informationRates <- NULL
  suppressWarnings(do.call(getDesignGroupSequential, args))
}

# The beta-spending function's cumulative value at t (for futility bounds at a look).
beta_spending <- function(name, beta, t) {
  sp <- spending(name)
  t <- pmin(pmax(t, 0), 1)
  switch(sp$type,
         OF = 2 * (1 - pnorm(qnorm(1 - beta / 2) / sqrt(t))),
         P = beta * log(1 + (exp(1) - 1) * t),
         HSD = if (sp$parameter == 0) beta * t else beta * (1 - exp(-sp$parameter * t)) / (1 - exp(-sp$parameter)),
         KD = beta * t^sp$parameter)
}

allocation_ratio <- function(s) s$allocation / (1 - s$allocation)

settings <- function(looks, spending, alpha, power, hazard_ratio, futility = NULL, binding = FALSE,
                     allocation = 0.5, information = NULL, alternative = "two-sided") {
  list(looks = looks, spending = spending, alpha = alpha, power = power, hazard_ratio = hazard_ratio,
       futility = futility, binding = binding, allocation = allocation, information = information,
       alternative = alternative)
}

DESIGNS <- list(
  of3_two_sided = settings(3, "obrien-fleming", 0.05, 0.8, 0.8),
  pocock2_two_sided = settings(2, "pocock", 0.05, 0.8, 0.75),
  of5_two_sided = settings(5, "obrien-fleming", 0.05, 0.8, 0.8),
  hsd_minus4_futility_of = settings(4, "hsd:-4", 0.025, 0.8, 0.8, futility = "obrien-fleming", alternative = "less"),
  hsd_minus2_futility_pocock_unequal = settings(5, "hsd:-2", 0.025, 0.8, 0.75, futility = "pocock",
                                                information = c(0.2, 0.35, 0.6, 0.8, 1), alternative = "less"),
  hsd_1_binding_hsd_minus2 = settings(3, "hsd:1", 0.025, 0.8, 0.8, futility = "hsd:-2", binding = TRUE,
                                      alternative = "less"),
  of4_futility_of_unequal_2to1 = settings(4, "obrien-fleming", 0.025, 0.8, 0.7, futility = "obrien-fleming",
                                          allocation = 2 / 3, information = c(0.3, 0.5, 0.75, 1), alternative = "less"),
  pocock3_two_sided_unequal = settings(3, "pocock", 0.05, 0.9, 0.85, allocation = 0.6,
                                       information = c(0.25, 0.6, 1)),
  hsd_minus4_two_looks_one_sided = settings(2, "hsd:-4", 0.025, 0.8, 0.8, alternative = "less"),
  kim_demets3_futility_kd2 = settings(4, "kim-demets:3", 0.025, 0.8, 0.8, futility = "kim-demets:2",
                                      alternative = "less"),
  of3_binding_unequal = settings(3, "obrien-fleming", 0.025, 0.85, 0.75, futility = "obrien-fleming",
                                 binding = TRUE, information = c(0.4, 0.7, 1), alternative = "less"),
  hsd_minus2_two_sided_unequal = settings(3, "hsd:-2", 0.05, 0.8, 0.8, information = c(0.5, 0.75, 1))
)

design_reference <- function(s) {
  d <- rpact_design(s)
  ch <- getDesignCharacteristics(d)
  ss <- getSampleSizeSurvival(d, hazardRatio = s$hazard_ratio, lambda2 = log(2) / 24, accrualTime = c(0, 12),
                              followUpTime = 24, allocationRatioPlanned = allocation_ratio(s))
  list(
    settings = s,
    critical_values = num(d$criticalValues), alpha_spent = num(d$alphaSpent), stage_levels = num(d$stageLevels),
    futility_bounds = if (is.null(s$futility)) NULL else num(d$futilityBounds),
    beta_spent = if (is.null(s$futility)) NULL else num(d$betaSpent),
    power = num(ch$power), rejection_probabilities = num(ch$rejectionProbabilities),
    futility_probabilities = if (is.null(s$futility)) NULL else num(ch$futilityProbabilities),
    shift = num(ch$shift), inflation_factor = num(ch$inflationFactor),
    max_events = num(ss$maxNumberOfEvents), events_per_stage = num(ss$eventsPerStage),
    expected_events_h0 = num(ss$expectedEventsH0), expected_events_h01 = num(ss$expectedEventsH01),
    expected_events_h1 = num(ss$expectedEventsH1),
    critical_effect_scale = num(ss$criticalValuesEffectScale),
    futility_effect_scale = if (is.null(s$futility)) NULL else num(ss$futilityBoundsEffectScale)
  )
}

designs <- lapply(DESIGNS, design_reference)

# ---------------------------------------------------------------------------------------- looks
# Futility bounds of looks 1..k at the fractions t (k < length(t)), spending the beta at those
# fractions under the drift eta (the planned design's, maximum information fixed): rpact's own
# probabilities with every bound shifted by -eta sqrt(t).
futility_at <- function(t, critical, beta_inc, eta, k) {
  b <- numeric(0)
  for (j in seq_len(k)) {
    shift <- eta * sqrt(t[1:j])
    f <- function(x) {
      lower <- c(b, x) - shift
      upper <- critical[1:j] - shift
      p <- getGroupSequentialProbabilities(matrix(c(lower, upper), nrow = 2, byrow = TRUE), t[1:j])
      p[1, j] - beta_inc[j]
    }
    b <- c(b, uniroot(f, c(-8, critical[j]), tol = 1e-13)$root)
  }
  b
}

look_reference <- function(name, events, z, final = FALSE) {
  s <- DESIGNS[[name]]
  ref <- designs[[name]]
  dmax <- ref$max_events
  k <- length(events)
  K <- s$looks
  planned <- if (is.null(s$information)) seq_len(K) / K else unlist(s$information)
  t_done <- events / dmax
  out <- list(design = name, events = events, statistic = z, final = final)
  r <- allocation_ratio(s)
  if (final) {
    # all the alpha spent at this look: rpact's asUser spending with the earlier looks' cumulative
    # alpha (rpact's own, from the design at those fractions) and the correlations of the events
    earlier <- rpact_design(s, informationRates = c(t_done[-k], 1))
    d <- rpact_design(s, informationRates = events / events[k], userAlphaSpending = c(earlier$alphaSpent[-k], s$alpha))
    out$critical_values <- num(d$criticalValues)
    out$alpha_spent <- num(d$alphaSpent)
    info <- t_done
  } else {
    info <- c(t_done, planned[(k + 1):K])
    d0 <- rpact_design(s, informationRates = info)
    futility <- NULL
    if (!is.null(s$futility)) {
      beta_cum <- beta_spending(s$futility, 1 - s$power, info)
      futility <- futility_at(info, num(d0$criticalValues), diff(c(0, beta_cum)), sqrt(ref$shift), K - 1)
      out$futility_bounds <- futility
    }
    d <- if (is.null(futility)) d0 else rpact_design(s, informationRates = info, futilityBounds = futility)
    out$critical_values <- num(d$criticalValues)
    out$alpha_spent <- num(d$alphaSpent)
  }
  data <- getDataset(overallEvents = events, overallLogRanks = z, overallAllocationRatios = rep(r, k))
  direction <- s$hazard_ratio > 1
  stage <- getStageResults(d, dataInput = data, stage = k, directionUpper = direction)
  out$effect_size <- num(stage$effectSizes[k])
  rci <- getRepeatedConfidenceIntervals(d, dataInput = data, directionUpper = direction, tolerance = 1e-12, stage = k)
  out$rci <- num(rci[, k])
  if (!final) {
    remaining <- diff(c(events[k], info[(k + 1):K] * dmax))
    cp <- function(hr) num(getConditionalPower(stage, nPlanned = remaining, thetaH1 = hr,
                                                allocationRatioPlanned = r)$conditionalPower)[K]
    out$conditional_power_design <- cp(s$hazard_ratio)
    out$conditional_power_trend <- cp(out$effect_size)
    out$r_call <- sprintf("getConditionalPower(getStageResults(design, getDataset(overallEvents = c(%s), overallLogRanks = c(%s)), directionUpper = %s), nPlanned = c(%s), thetaH1 = ...)",
                          paste(events, collapse = ", "), paste(z, collapse = ", "), direction,
                          paste(signif(remaining, 8), collapse = ", "))
  }
  out
}

at <- function(name, fractions) round(fractions * designs[[name]]$max_events)
LOOKS <- list(
  of3_first = look_reference("of3_two_sided", at("of3_two_sided", 0.3), -2.1),
  of3_second = look_reference("of3_two_sided", at("of3_two_sided", c(0.3, 0.71)), c(-2.1, -2.4)),
  of3_final_early = look_reference("of3_two_sided", at("of3_two_sided", c(0.3, 0.71, 0.93)), c(-2.1, -2.4, -2.05),
                                   final = TRUE),
  hsd_minus4_futility_second = look_reference("hsd_minus4_futility_of", at("hsd_minus4_futility_of", c(0.22, 0.55)),
                                              c(-0.9, -1.2)),
  binding_first = look_reference("hsd_1_binding_hsd_minus2", at("hsd_1_binding_hsd_minus2", 0.4), -0.3),
  unequal_2to1_third = look_reference("of4_futility_of_unequal_2to1",
                                      at("of4_futility_of_unequal_2to1", c(0.28, 0.52, 0.8)), c(-1.1, -1.9, -2.2)),
  hsd_minus2_first_harmful_trend = look_reference("hsd_minus2_futility_pocock_unequal",
                                                  at("hsd_minus2_futility_pocock_unequal", 0.22), 0.5),
  pocock_two_sided_second = look_reference("pocock3_two_sided_unequal", at("pocock3_two_sided_unequal", c(0.2, 0.55)),
                                           c(-1.0, -2.3))
)

# ----------------------------------------------------------------------------------------- rossi
rossi <- read.csv(file.path(here, "rossi.csv"))
ROSSI_DESIGN <- settings(2, "obrien-fleming", 0.05, 0.8, 0.6)
DESIGNS$rossi <- ROSSI_DESIGN
designs$rossi <- design_reference(ROSSI_DESIGN)
logrank_z <- function(time, status, group) {
  sd <- survdiff(Surv(time, status) ~ group)
  num((sd$obs[2] - sd$exp[2]) / sqrt(sd$var[2, 2]))
}
week26 <- pmin(rossi$week, 26)
arrest26 <- as.integer(rossi$arrest == 1 & rossi$week <= 26)
events <- c(sum(arrest26), sum(rossi$arrest))
z <- c(logrank_z(week26, arrest26, rossi$fin), logrank_z(rossi$week, rossi$arrest, rossi$fin))
rossi_ref <- list(
  r_call = c("survdiff(Surv(pmin(week, 26), arrest & week <= 26) ~ fin, rossi)", "survdiff(Surv(week, arrest) ~ fin, rossi)"),
  events = events, statistic = z,
  interim = look_reference("rossi", events[1], z[1]),
  final = look_reference("rossi", events, z, final = events[2] < designs$rossi$max_events)
)

meta <- list(r_version = R.version.string, rpact_version = as.character(packageVersion("rpact")),
             survival_version = as.character(packageVersion("survival")),
             generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
             script = "tests/reference/rpact_group_sequential.R", tolerance = TOL)
writeLines(toJSON(list(meta = meta, designs = designs, looks = LOOKS, rossi = rossi_ref), auto_unbox = TRUE,
                  digits = NA, null = "null", pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
