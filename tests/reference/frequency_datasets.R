# Reference numbers for rjtrial.frequency.rate_ratio on published count data that ship with
# R's MASS (Venables & Ripley 2002, Modern Applied Statistics with S, 4th ed.):
#   quine      Days absent from school, 146 children (Quine 1975; MASS sections 7.4 and 7.5):
#              negative binomial, glm.nb(Days ~ Eth + Sex + Age + Lrn), and Poisson.
#   Insurance  Car insurance claims by district, car group and age (Baxter, Coutts & Ross 1980;
#              MASS section 7.1): Poisson with offset(log(Holders)); the ordered factors
#              Group and Age are made unordered so that R uses treatment contrasts. These
#              counts show no overdispersion: glm.nb fails on them ("missing value where
#              TRUE/FALSE needed", theta -> infinity); the test checks that rjtrial's negative
#              binomial falls back to this Poisson fit and says so.
#
# Run from the repository root:  Rscript tests/reference/frequency_datasets.R
# Writes tests/reference/datasets/quine.csv, insurance.csv, tests/reference/frequency_datasets.json

suppressPackageStartupMessages({
  library(MASS)
  library(jsonlite)
})
here <- "tests/reference"
source(file.path(here, "_survival_json.R"))  # num(), nummat()
dir.create(file.path(here, "datasets"), showWarnings = FALSE)

quine2 <- quine
write.csv(quine2, file.path(here, "datasets", "quine.csv"), row.names = FALSE)
ins <- Insurance
ins$Group <- factor(ins$Group, ordered = FALSE)
ins$Age <- factor(ins$Age, ordered = FALSE)
write.csv(ins, file.path(here, "datasets", "insurance.csv"), row.names = FALSE)

glm_out <- function(fit, r_call, py, levels) {
  s <- summary(fit)$coefficients
  out <- list(r_call = r_call, py = py, levels = levels, terms = rownames(s),
              coef = num(unname(s[, 1]), scalar = FALSE), se = num(unname(s[, 2]), scalar = FALSE),
              z = num(unname(s[, 3]), scalar = FALSE), p = num(unname(s[, 4]), scalar = FALSE),
              loglik = num(as.numeric(logLik(fit))), n = num(nobs(fit)))
  if (!is.null(fit$theta)) {
    out$theta <- num(fit$theta)
    tight <- theta.ml(fit$y, fitted(fit), limit = 100, eps = 1e-14)
    out$theta_tight_se <- num(attr(tight, "SE"))
  }
  out
}
ctl <- glm.control(epsilon = 1e-14, maxit = 100)

quine_levels <- lapply(quine[c("Eth", "Sex", "Age", "Lrn")], levels)
ins_levels <- lapply(ins[c("District", "Group", "Age")], levels)
reference <- list(
  meta = list(r_version = R.version.string, MASS_version = as.character(packageVersion("MASS")),
              script = "tests/reference/frequency_datasets.R"),
  quine_nb = glm_out(glm.nb(Days ~ Eth + Sex + Age + Lrn, quine, control = ctl),
                     "glm.nb(Days ~ Eth + Sex + Age + Lrn, quine)  # MASS 4th ed. p. 206",
                     list(file = "datasets/quine.csv", count = "Days", group = "Eth",
                          covariates = c("Sex", "Age", "Lrn"), model = "negative_binomial"), quine_levels),
  quine_poisson = glm_out(glm(Days ~ Eth + Sex + Age + Lrn, poisson, quine, control = ctl),
                          "glm(Days ~ Eth + Sex + Age + Lrn, poisson, quine)",
                          list(file = "datasets/quine.csv", count = "Days", group = "Eth",
                               covariates = c("Sex", "Age", "Lrn"), model = "poisson"), quine_levels),
  insurance_poisson = glm_out(glm(Claims ~ District + Group + Age + offset(log(Holders)), poisson, ins, control = ctl),
                              "glm(Claims ~ District + Group + Age + offset(log(Holders)), poisson, Insurance)  # Group, Age unordered",
                              list(file = "datasets/insurance.csv", count = "Claims", exposure = "Holders",
                                   group = "District", covariates = c("Group", "Age"), model = "poisson"), ins_levels)

)
writeLines(toJSON(reference, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE), file.path(here, "frequency_datasets.json"))
cat("wrote frequency_datasets.json\n")
