# Reference numbers for rjtrial.meta.bayes, computed with R's bayesmeta (Röver 2020).
#
# bayesmeta is not packaged for Debian. Either install it from CRAN (install.packages("bayesmeta"))
# or point BAYESMETA_SOURCE at an unpacked copy of its source package, whose R/bayesmeta.R is
# then sourced (its computations need only base R and metafor; forestplot and mvtnorm serve its
# forest plots and meta-regression, not used here). These numbers were made the second way,
# with bayesmeta 3.4 (2024-02-15; its source from the cran/bayesmeta mirror on GitHub):
#
#     BAYESMETA_SOURCE=/path/to/bayesmeta Rscript tests/reference/bayesmeta_reference.R
#
# from the repository root (needs r-base-core, r-cran-metafor, r-cran-metadat, jsonlite). At this
# accuracy it takes about an hour on two shared cores (dat.bcg most of it); BAYESMETA_SECTIONS
# and BAYESMETA_OUT (below) run some datasets into another file.
#
# Writes  tests/reference/crins2014.csv          (Crins et al. 2014, as bundled with bayesmeta)
#         tests/reference/bayesmeta_reference.json
#
# bayesmeta integrates tau exactly (integrate()), but approximates the posterior of mu, of a
# new study's effect and of each study's effect by a finite normal mixture (its DIRECT
# algorithm) whose accuracy is set by delta and epsilon (defaults 0.01 and 1e-4: ~4e-4 on
# mu's interval, ~2e-3 on the prediction interval and shrunken effects, Crins et al.). Every case here is run at delta = 1e-6, epsilon = 1e-9,
# and the paper's example also at the defaults (the numbers printed in Röver 2020).
# Numbers are written by jsonlite with 15 significant digits; the test suite never needs R.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

source_dir <- Sys.getenv("BAYESMETA_SOURCE")
if (requireNamespace("bayesmeta", quietly = TRUE)) {
  suppressPackageStartupMessages(library(bayesmeta))
  bayesmeta_version <- as.character(packageVersion("bayesmeta"))
} else if (nzchar(source_dir)) {
  source(file.path(source_dir, "R", "bayesmeta.R"))
  bayesmeta_version <- paste(read.dcf(file.path(source_dir, "DESCRIPTION"), fields = "Version"),
                             "(R/bayesmeta.R sourced)")
} else {
  stop("install bayesmeta, or set BAYESMETA_SOURCE to its unpacked source package")
}

here <- "tests/reference"
out_file <- Sys.getenv("BAYESMETA_OUT", file.path(here, "bayesmeta_reference.json"))
# BAYESMETA_SECTIONS=crins2014,bcg,hart1999 (default: all) runs only some datasets (each takes
# minutes at this accuracy); progress goes to standard error.
sections <- strsplit(Sys.getenv("BAYESMETA_SECTIONS", "crins2014,bcg,hart1999"), ",")[[1]]
progress <- function(...) message(format(Sys.time(), "%H:%M:%S "), ...)
DELTA <- 1e-6
EPSILON <- 1e-9
num <- function(x) as.numeric(unname(x))

# Crins et al. (2014): acute rejection, IL-2 receptor antagonists vs control in pediatric liver
# transplantation; the data of Röver (2020), Table 3 (bayesmeta's CrinsEtAl2014, 6 studies).
crins <- data.frame(
  publication = c("Spada (2006)", "Ganschow (2005)", "Gibelli (2004)", "Heffron (2003)", "Schuller (2005)",
                  "Gras (2008)"),
  exp_events = c(4, 9, 16, 14, 3, 0), exp_total = c(36, 54, 28, 61, 18, 50),
  cont_events = c(11, 29, 19, 15, 8, 3), cont_total = c(36, 54, 28, 20, 12, 34))
write.csv(crins, file.path(here, "crins2014.csv"), row.names = FALSE)
crins_es <- escalc(measure = "OR", ai = exp_events, n1i = exp_total, ci = cont_events, n2i = cont_total,
                   slab = publication, data = crins)

bcg <- dat.bcg  # exported as metadat_bcg.csv by metafor_reference.R
bcg_es <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
hart <- dat.hart1999  # exported as metadat_hart1999.csv by metafor_reference.R
hart_es <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = hart)

summaries <- function(ma) {
  s <- ma$summary
  th <- ma$theta
  list(
    tau = as.list(setNames(num(s[, "tau"]), c("mode", "median", "mean", "sd", "lower", "upper"))),
    mu = as.list(setNames(num(s[, "mu"]), c("mode", "median", "mean", "sd", "lower", "upper"))),
    prediction = as.list(setNames(num(s[, "theta"]), c("mode", "median", "mean", "sd", "lower", "upper"))),
    theta = list(median = num(th["median", ]), mean = num(th["mean", ]), sd = num(th["sd", ]),
                 lower = num(th["95% lower", ]), upper = num(th["95% upper", ])),
    support_points = nrow(ma$support)
  )
}

run <- function(es, tau_prior, mu_mean = NA, mu_sd = NA, interval, delta = DELTA, epsilon = EPSILON) {
  ma <- bayesmeta(y = es$yi, sigma = sqrt(es$vi), tau.prior = tau_prior, mu.prior.mean = mu_mean,
                  mu.prior.sd = mu_sd, interval.type = interval, delta = delta, epsilon = epsilon)
  summaries(ma)
}

half_normal <- function(t) dhalfnormal(t, scale = 0.5)
half_cauchy <- function(t) dhalfcauchy(t, scale = 0.5)
exponential <- function(t) dexp(t, rate = 2)

ref <- list()
ref$meta <- list(
  r_version = R.version.string,
  bayesmeta_version = bayesmeta_version,
  metafor_version = as.character(packageVersion("metafor")),
  generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
  script = "tests/reference/bayesmeta_reference.R",
  delta = DELTA, epsilon = EPSILON, sections = sections
)

# ---- Röver (2020), section 3.3: half-normal(0.5) prior on tau, normal(0, 4) on mu ------------
if ("crins2014" %in% sections) {
progress("crins2014")
ma01 <- bayesmeta(y = crins_es$yi, sigma = sqrt(crins_es$vi), mu.prior.mean = 0, mu.prior.sd = 4,
                  tau.prior = half_normal)  # bayesmeta's defaults, as in the paper
ref$crins2014 <- list(
  yi = num(crins_es$yi), vi = num(crins_es$vi),
  central = run(crins_es, half_normal, 0, 4, "central"),
  shortest = run(crins_es, half_normal, 0, 4, "shortest"),
  default_settings = summaries(ma01),
  p_tau_above_1 = 1 - num(ma01$pposterior(tau = 1)),
  tau_quantile_99 = num(ma01$qposterior(tau.p = 0.99)),
  tau_central_99 = num(ma01$post.interval(tau.level = 0.99, method = "central")),
  tau_shortest_99 = num(ma01$post.interval(tau.level = 0.99))
)
}

# ---- dat.bcg (log risk ratios): half-Cauchy(0.5) and uniform priors on tau, uniform mu -------
if ("bcg" %in% sections) {
progress("bcg")
ref$bcg <- list(
  half_cauchy = run(bcg_es, half_cauchy, interval = "central"),
  uniform = run(bcg_es, "uniform", interval = "central"),
  uniform_shortest = run(bcg_es, "uniform", interval = "shortest")
)
}

# ---- dat.hart1999 (log incidence rate ratios): exponential prior (mean 0.5), uniform mu ------
if ("hart1999" %in% sections) {
progress("hart1999")
ref$hart1999 <- list(
  exponential = run(hart_es, exponential, interval = "central")
)
}

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = 1), out_file)
cat("wrote", out_file, "\n")
