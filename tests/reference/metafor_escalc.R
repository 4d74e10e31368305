# Reference numbers for rjtrial.effects' measures beyond the 2x2 / SMD / IRR ones of
# metafor_reference.R: every escalc measure and variance type rjtrial offers, on datasets that
# ship with R's metadat, on Morris (2008)'s pre-post-control data, and on boundary cases
# (zero counts, proportions of 0 and 1, correlations of +-1, tiny samples).
#
# Run from the repository root (needs r-base-core, r-cran-metafor, r-cran-metadat, jsonlite):
#
#     Rscript tests/reference/metafor_escalc.R
#
# Writes  tests/reference/metadat_pritz1997.csv     (dat.pritz1997: 14 proportions)
#         tests/reference/metadat_curtis1998.csv    (dat.curtis1998: 102 ratios of means)
#         tests/reference/metadat_molloy2014.csv    (dat.molloy2014: 16 correlations)
#         tests/reference/morris2008.csv            (Morris 2008, Table 1: 5 pre-post-control studies)
#         tests/reference/escalc_boundary_*.csv     (boundary cases, made up here)
#         tests/reference/metafor_escalc.json
#
# Inputs already exported by metafor_reference.R (dat.normand1999, dat.hart1999,
# dat.collins1985a) are read from metadat here too. Numbers are written by jsonlite with 15
# significant digits (digits = NA); R's NA is null. The test suite reads the JSON and the CSVs
# and never needs R.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

here <- "tests/reference"
out_file <- file.path(here, "metafor_escalc.json")

num <- function(x) as.numeric(unname(x))
es_out <- function(es) list(yi = num(es$yi), vi = num(es$vi))
write_input <- function(x, name) write.csv(x, file.path(here, paste0(name, ".csv")), row.names = FALSE)

ref <- list()
ref$meta <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
  script = "tests/reference/metafor_escalc.R"
)

# ---- dat.pritz1997: favourable outcome after surgery, 14 case series (proportions) ----------
pr <- dat.pritz1997
write_input(pr, "metadat_pritz1997")
ref$pritz1997 <- list(
  PR_LS = es_out(escalc("PR", xi = xi, ni = ni, data = pr)),
  PR_UB = es_out(escalc("PR", xi = xi, ni = ni, data = pr, vtype = "UB")),
  PR_AV = es_out(escalc("PR", xi = xi, ni = ni, data = pr, vtype = "AV")),
  PLN_LS = es_out(escalc("PLN", xi = xi, ni = ni, data = pr)),
  PLN_AV = es_out(escalc("PLN", xi = xi, ni = ni, data = pr, vtype = "AV")),
  PLO_LS = es_out(escalc("PLO", xi = xi, ni = ni, data = pr)),
  PLO_AV = es_out(escalc("PLO", xi = xi, ni = ni, data = pr, vtype = "AV")),
  PAS = es_out(escalc("PAS", xi = xi, ni = ni, data = pr)),
  PFT = es_out(escalc("PFT", xi = xi, ni = ni, data = pr)),
  # the same with every study corrected (to = "all") and another increment
  PR_all = es_out(escalc("PR", xi = xi, ni = ni, data = pr, to = "all")),
  PLO_all_quarter = es_out(escalc("PLO", xi = xi, ni = ni, data = pr, to = "all", add = 1/4)),
  PFT_all_half = es_out(escalc("PFT", xi = xi, ni = ni, data = pr, to = "all", add = 1/2))
)

# ---- dat.curtis1998: woody plant mass under elevated CO2 (ratio of means) ------------------
cu <- dat.curtis1998
write_input(cu, "metadat_curtis1998")
rom <- function(vtype) es_out(escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                                     n2i = n2i, data = cu, vtype = vtype))
ref$curtis1998 <- list(
  ROM_LS = rom("LS"), ROM_HO = rom("HO"), ROM_AV = rom("AV"), ROM_AVHO = rom("AVHO"),
  MD_LS = es_out(escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = cu)),
  MD_HO = es_out(escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = cu,
                        vtype = "HO"))
)

# ---- dat.normand1999: stroke care, length of stay (MD, SMD variance types, RPB) -------------
nd <- dat.normand1999
smd <- function(vtype) es_out(escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                                     n2i = n2i, data = nd, vtype = vtype))
ref$normand1999 <- list(
  MD_LS = es_out(escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)),
  MD_HO = es_out(escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd,
                        vtype = "HO")),
  SMD_LS = smd("LS"), SMD_LS2 = smd("LS2"), SMD_UB = smd("UB"), SMD_AV = smd("AV"),
  ROM_LS = es_out(escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)),
  RPB = es_out(escalc("RPB", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)),
  # the same correlations from t statistics, the d -> r conversion with equal groups (h = 4,
  # Borenstein et al. 2009, eq. 7.5-7.6) and back, written out
  SMD_ti_UB = es_out(escalc("SMD", ti = (m1i - m2i) / sqrt(((n1i - 1) * sd1i^2 + (n2i - 1) * sd2i^2) /
                                          (n1i + n2i - 2)) / sqrt(1 / n1i + 1 / n2i),
                            n1i = n1i, n2i = n2i, data = nd, vtype = "UB"))
)
d_nd <- with(nd, (m1i - m2i) / sqrt(((n1i - 1) * sd1i^2 + (n2i - 1) * sd2i^2) / (n1i + n2i - 2)))
vd_nd <- with(nd, 1 / n1i + 1 / n2i + d_nd^2 / (2 * (n1i + n2i)))
r_equal <- d_nd / sqrt(d_nd^2 + 4)
ref$normand1999$d_to_r_equal_groups <- list(yi = r_equal, vi = 16 * vd_nd / (d_nd^2 + 4)^3)
ref$normand1999$d_to_log_or_to_r <- list(  # D2ORL, then back to d (OR2DL's factor), then RPB's r
  yi = num(escalc("RPB", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)$yi))

# ---- dat.molloy2014: conscientiousness and medication adherence (correlations) --------------
mo <- dat.molloy2014
write_input(mo, "metadat_molloy2014")
ref$molloy2014 <- list(
  COR_LS = es_out(escalc("COR", ri = ri, ni = ni, data = mo)),
  COR_AV = es_out(escalc("COR", ri = ri, ni = ni, data = mo, vtype = "AV")),
  ZCOR = es_out(escalc("ZCOR", ri = ri, ni = ni, data = mo)),
  rtoz = num(transf.rtoz(mo$ri)),
  ztor = num(transf.ztor(escalc("ZCOR", ri = ri, ni = ni, data = mo)$yi))
)

# ---- Morris (2008), Table 1: pre-post-control designs (Carlson & Schmidt 1999) --------------
# The five studies of Morris (2008), Organizational Research Methods 11(2), 364-386, Table 1,
# as metafor's own Morris (2008) example enters them (treatment and control arms).
morris <- data.frame(
  study = 1:5,
  m_pre_t = c(30.6, 23.5, 0.5, 53.4, 35.6), m_post_t = c(38.5, 26.8, 0.7, 75.9, 36.0),
  sd_pre_t = c(15.0, 3.1, 0.1, 14.5, 4.7), sd_post_t = c(11.6, 4.1, 0.1, 4.4, 4.6),
  n_t = c(20, 50, 9, 10, 14),
  m_pre_c = c(23.1, 24.9, 0.6, 55.7, 34.8), m_post_c = c(19.7, 25.3, 0.6, 60.7, 33.4),
  sd_pre_c = c(13.8, 4.1, 0.2, 17.3, 3.1), sd_post_c = c(14.8, 3.3, 0.2, 17.9, 6.9),
  n_c = c(20, 42, 9, 11, 14),
  r = c(0.47, 0.64, 0.77, 0.89, 0.44)
)
write_input(morris, "morris2008")
smcr <- function(arm, vtype) escalc("SMCR", m1i = morris[[paste0("m_post_", arm)]],
                                    m2i = morris[[paste0("m_pre_", arm)]], sd1i = morris[[paste0("sd_pre_", arm)]],
                                    ni = morris[[paste0("n_", arm)]], ri = morris$r, vtype = vtype)
smcc <- function(arm, vtype) escalc("SMCC", m1i = morris[[paste0("m_post_", arm)]],
                                    m2i = morris[[paste0("m_pre_", arm)]], sd1i = morris[[paste0("sd_post_", arm)]],
                                    sd2i = morris[[paste0("sd_pre_", arm)]], ni = morris[[paste0("n_", arm)]],
                                    ri = morris$r, vtype = vtype)
ref$morris2008 <- list()
for (vtype in c("LS", "LS2")) {
  for (arm in c("t", "c")) {
    ref$morris2008[[paste0("SMCR_", arm, "_", vtype)]] <- es_out(smcr(arm, vtype))
    ref$morris2008[[paste0("SMCC_", arm, "_", vtype)]] <- es_out(smcc(arm, vtype))
  }
  ref$morris2008[[paste0("SMCR_difference_", vtype)]] <- list(
    yi = num(smcr("t", vtype)$yi - smcr("c", vtype)$yi), vi = num(smcr("t", vtype)$vi + smcr("c", vtype)$vi))
  ref$morris2008[[paste0("SMCC_difference_", vtype)]] <- list(
    yi = num(smcc("t", vtype)$yi - smcc("c", vtype)$yi), vi = num(smcc("t", vtype)$vi + smcc("c", vtype)$vi))
}
ref$morris2008$published_d_ppc1 <- c(0.74, 0.95, 1.81, 1.15, 0.51)  # Morris (2008), Table 1, p. 368

# ---- dat.hart1999: warfarin, events per person-year (IR, IRLN per arm; IRD) ----------------
ha <- dat.hart1999
ref$hart1999 <- list(
  IR_treatment = es_out(escalc("IR", xi = x1i, ti = t1i, data = ha)),
  IR_control = es_out(escalc("IR", xi = x2i, ti = t2i, data = ha)),
  IRLN_treatment = es_out(escalc("IRLN", xi = x1i, ti = t1i, data = ha)),
  IRLN_control = es_out(escalc("IRLN", xi = x2i, ti = t2i, data = ha)),
  IRD = es_out(escalc("IRD", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = ha))
)

# ---- dat.collins1985a: H2 antagonists, zero cells and missing outcomes (AS) -----------------
co <- dat.collins1985a
as_out <- function(x1, x2, ...) es_out(escalc("AS", ai = co[[x1]], n1i = co$nti, ci = co[[x2]], n2i = co$nci, ...))
ref$collins1985a <- list(
  AS_bleeding = as_out("b.xti", "b.xci"),
  AS_operation = as_out("o.xti", "o.xci"),  # rows with missing counts are NA
  AS_death = as_out("d.xti", "d.xci"),
  AS_death_half = as_out("d.xti", "d.xci", add = 1/2),  # add given: only0 tables corrected
  AS_death_drop00 = as_out("d.xti", "d.xci", drop00 = TRUE)
)

# ---- boundary cases ----------------------------------------------------------------------
TO <- c("only0", "all", "if0all", "none")
bp <- data.frame(xi = c(0, 10, 0, 1, 5, 3, 7), ni = c(10, 10, 1, 1, 6, 20, 7))
write_input(bp, "escalc_boundary_proportions")
b2 <- data.frame(ai = c(0, 0, 10, 10, 4, 25), n1i = c(10, 10, 10, 10, 25, 25),
                 ci = c(3, 0, 5, 12, 7, 0), n2i = c(12, 12, 12, 12, 30, 30))
write_input(b2, "escalc_boundary_two_by_two")
br <- data.frame(x1i = c(0, 0, 5, 12), t1i = c(100, 100, 250, 80.5), x2i = c(3, 0, 9, 0), t2i = c(120, 90, 240, 75))
write_input(br, "escalc_boundary_rates")
bc <- data.frame(ri = c(0.999, -0.95, 0, 1, -1, 0.3, 0.5), ni = c(4, 5, 100, 10, 12, 3, 4))
write_input(bc, "escalc_boundary_correlations")

cases <- list()
for (to in TO) for (add in c(1/2, 1/4, 0)) {
  key <- function(m) sprintf("%s_%s_%g", m, to, add)
  for (m in c("PR", "PLN", "PLO", "PAS", "PFT"))
    cases[[key(m)]] <- es_out(suppressWarnings(escalc(m, xi = xi, ni = ni, data = bp, to = to, add = add)))
  for (m in c("AS", "RD", "OR", "RR"))
    cases[[key(m)]] <- es_out(suppressWarnings(escalc(m, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = b2,
                                                      to = to, add = add)))
  for (m in c("IRD", "IRR"))
    cases[[key(m)]] <- es_out(suppressWarnings(escalc(m, x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = br,
                                                      to = to, add = add)))
  for (m in c("IR", "IRLN"))
    cases[[key(m)]] <- es_out(suppressWarnings(escalc(m, xi = x1i, ti = t1i, data = br, to = to, add = add)))
}
for (m in c("PR", "PLN", "PLO", "PAS", "PFT"))  # escalc's own default add for the measure
  cases[[sprintf("%s_default", m)]] <- es_out(suppressWarnings(escalc(m, xi = xi, ni = ni, data = bp)))
cases$AS_default <- es_out(escalc("AS", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = b2))
cases$AS_drop00 <- es_out(escalc("AS", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = b2, drop00 = TRUE))
cases$IRD_drop00 <- es_out(escalc("IRD", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = br, drop00 = TRUE))
cases$COR_LS <- es_out(suppressWarnings(escalc("COR", ri = ri, ni = ni, data = bc)))
cases$ZCOR <- es_out(suppressWarnings(escalc("ZCOR", ri = ri, ni = ni, data = bc)))
ref$boundary <- cases

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = 1), out_file)
cat("wrote", out_file, "\n")
