# Reference numbers for rjtrial.survival on published datasets that ship with R's `survival`
# (issue: "Survival analysis that holds on real data"). Real data have what generated data
# hide: repeated start times, ties in time and in predictors, missing values (na.omit),
# factors and interactions, 1/2 event coding, counting-process rows, tiny strata.
#
# Run from the repository root (needs r-base-core, r-cran-survival, jsonlite):
#
#     Rscript tests/reference/survival_datasets.R
#
# Writes  tests/reference/datasets/<name>.csv   each dataset as R has it (factors as text;
#                                               their level order is in the JSON)
#         tests/reference/survival_datasets.json
#
# Every case records the Python call that must reproduce it ("py"): formula in formulaic's
# syntax, columns and options. The R call is in "r_call". Numbers are written with 17
# significant digits, NA as null (see _survival_json.R).

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

here <- "tests/reference"
source(file.path(here, "_survival_json.R"))  # num(), nummat(), cox_out(), km_out(), rmst_out(), logrank_out()
dir.create(file.path(here, "datasets"), showWarnings = FALSE)
out_file <- file.path(here, "survival_datasets.json")

export <- function(data, name) {
  factors <- names(data)[vapply(data, is.factor, TRUE)]
  levels <- setNames(lapply(factors, function(f) levels(data[[f]])), factors)
  for (f in factors) data[[f]] <- as.character(data[[f]])
  write.csv(data, file.path(here, "datasets", paste0(name, ".csv")), row.names = FALSE, na = "")
  list(file = paste0("datasets/", name, ".csv"), n = nrow(data), levels = levels)
}

# A Cox fit with everything rjtrial reports about it.
cox_case <- function(fit, r_call, py, zph = TRUE) {
  out <- cox_out(fit, zph = zph)
  out$r_call <- r_call
  out$py <- py
  out$n_omitted <- num(length(fit$na.action))
  out$concordance_std <- num(unname(fit$concordance["std"]))
  out
}
py <- function(formula, time, event, ...) list(formula = formula, time = time, event = event, ...)

datasets <- list()
cases <- list()

# ---- lung: NCCTG advanced lung cancer (Loprinzi et al. 1994) ----------------------------------
# status 1 = censored, 2 = dead (R's 1/2 coding); NA in ph.ecog, ph.karno, wt.loss.
datasets$lung <- export(lung, "lung")
cases$lung_cox_efron <- cox_case(
  coxph(Surv(time, status) ~ age + sex + ph.ecog + ph.karno + wt.loss, lung),
  "coxph(Surv(time, status) ~ age + sex + ph.ecog + ph.karno + wt.loss, lung)",
  py("age + sex + ph.ecog + ph.karno + wt.loss", "time", "status", event_coding = "r"))
cases$lung_cox_breslow <- cox_case(
  coxph(Surv(time, status) ~ age + sex + ph.ecog, lung, ties = "breslow"),
  "coxph(Surv(time, status) ~ age + sex + ph.ecog, lung, ties = 'breslow')",
  py("age + sex + ph.ecog", "time", "status", event_coding = "r", ties = "breslow"))
cases$lung_cox_factor_strata_cluster <- cox_case(
  coxph(Surv(time, status) ~ age + factor(ph.ecog) + strata(sex) + cluster(inst), lung),
  "coxph(Surv(time, status) ~ age + factor(ph.ecog) + strata(sex) + cluster(inst), lung)",
  py("age + C(ph.ecog)", "time", "status", event_coding = "r", strata = "sex", cluster = "inst"))
lung_km <- survfit(Surv(time, status) ~ sex, lung)                       # R's default conf.type = "log"
lung_km_ll <- survfit(Surv(time, status) ~ sex, lung, conf.type = "log-log")
cases$lung_km_sex_log <- c(km_out(lung_km, times = c(90, 180, 365, 730)),
                           list(r_call = "survfit(Surv(time, status) ~ sex, lung)",
                                py = py(NULL, "time", "status", group = "sex", event_coding = "r", conf_type = "log")))
cases$lung_km_sex_loglog <- c(km_out(lung_km_ll, times = c(90, 180, 365, 730)),
                              list(r_call = "survfit(Surv(time, status) ~ sex, lung, conf.type = 'log-log')",
                                   py = py(NULL, "time", "status", group = "sex", event_coding = "r", conf_type = "log-log")))
cases$lung_logrank_sex <- c(logrank_out(survdiff(Surv(time, status) ~ sex, lung)),
                            list(r_call = "survdiff(Surv(time, status) ~ sex, lung)",
                                 py = py(NULL, "time", "status", group = "sex", event_coding = "r")))
cases$lung_logrank_ecog_strata <- c(logrank_out(survdiff(Surv(time, status) ~ sex + strata(ph.ecog), lung)),
                                    list(r_call = "survdiff(Surv(time, status) ~ sex + strata(ph.ecog), lung)  # 1 NA omitted",
                                         py = py(NULL, "time", "status", group = "sex", strata = "ph.ecog", event_coding = "r")))
cases$lung_rmst_sex_700 <- c(rmst_out(lung_km, 700),
                             list(r_call = "summary(survfit(Surv(time, status) ~ sex, lung), rmean = 700)$table",
                                  py = py(NULL, "time", "status", group = "sex", event_coding = "r")))

# ---- veteran: Veterans' Administration lung cancer trial (Kalbfleisch & Prentice 1980) --------
datasets$veteran <- export(veteran, "veteran")
cases$veteran_cox_celltype <- cox_case(
  coxph(Surv(time, status) ~ trt + celltype + karno + diagtime + age + prior, veteran),
  "coxph(Surv(time, status) ~ trt + celltype + karno + diagtime + age + prior, veteran)",
  py("trt + celltype + karno + diagtime + age + prior", "time", "status"))
cases$veteran_cox_interaction_strata <- cox_case(
  coxph(Surv(time, status) ~ trt * karno + strata(celltype), veteran),
  "coxph(Surv(time, status) ~ trt * karno + strata(celltype), veteran)",
  py("trt * karno", "time", "status", strata = "celltype"))
cases$veteran_cox_breslow <- cox_case(
  coxph(Surv(time, status) ~ trt + celltype + karno, veteran, ties = "breslow"),
  "coxph(Surv(time, status) ~ trt + celltype + karno, veteran, ties = 'breslow')",
  py("trt + celltype + karno", "time", "status", ties = "breslow"))
vet_km <- survfit(Surv(time, status) ~ trt, veteran, conf.type = "log-log")
cases$veteran_km_trt <- c(km_out(vet_km, times = c(30, 90, 180, 365)),
                          list(r_call = "survfit(Surv(time, status) ~ trt, veteran, conf.type = 'log-log')",
                               py = py(NULL, "time", "status", group = "trt", conf_type = "log-log")))
cases$veteran_logrank_trt_strata <- c(logrank_out(survdiff(Surv(time, status) ~ trt + strata(celltype), veteran)),
                                      list(r_call = "survdiff(Surv(time, status) ~ trt + strata(celltype), veteran)",
                                           py = py(NULL, "time", "status", group = "trt", strata = "celltype")))
cases$veteran_logrank_celltype <- c(logrank_out(survdiff(Surv(time, status) ~ celltype, veteran)),
                                    list(r_call = "survdiff(Surv(time, status) ~ celltype, veteran)",
                                         py = py(NULL, "time", "status", group = "celltype")))
cases$veteran_rmst_trt_365 <- c(rmst_out(vet_km, 365),
                                list(r_call = "summary(survfit(Surv(time, status) ~ trt, veteran), rmean = 365)$table",
                                     py = py(NULL, "time", "status", group = "trt")))

# ---- ovarian: ovarian cancer trial (Edmonson et al. 1979); 26 women ----------------------------
datasets$ovarian <- export(ovarian, "ovarian")
cases$ovarian_cox <- cox_case(
  coxph(Surv(futime, fustat) ~ age + rx + ecog.ps, ovarian),
  "coxph(Surv(futime, fustat) ~ age + rx + ecog.ps, ovarian)",
  py("age + rx + ecog.ps", "futime", "fustat"))
cases$ovarian_cox_breslow_strata <- cox_case(
  coxph(Surv(futime, fustat) ~ age + rx + strata(resid.ds), ovarian, ties = "breslow"),
  "coxph(Surv(futime, fustat) ~ age + rx + strata(resid.ds), ovarian, ties = 'breslow')",
  py("age + rx", "futime", "fustat", strata = "resid.ds", ties = "breslow"))
ov_km <- survfit(Surv(futime, fustat) ~ rx, ovarian, conf.type = "log-log")
cases$ovarian_km_rx <- c(km_out(ov_km, times = c(100, 365, 730)),
                         list(r_call = "survfit(Surv(futime, fustat) ~ rx, ovarian, conf.type = 'log-log')",
                              py = py(NULL, "futime", "fustat", group = "rx", conf_type = "log-log")))
cases$ovarian_logrank_rx <- c(logrank_out(survdiff(Surv(futime, fustat) ~ rx, ovarian)),
                              list(r_call = "survdiff(Surv(futime, fustat) ~ rx, ovarian)",
                                   py = py(NULL, "futime", "fustat", group = "rx")))
cases$ovarian_rmst_rx_700 <- c(rmst_out(ov_km, 700),
                               list(r_call = "summary(survfit(Surv(futime, fustat) ~ rx, ovarian), rmean = 700)$table",
                                    py = py(NULL, "futime", "fustat", group = "rx")))

# ---- colon: adjuvant chemotherapy for colon cancer (Moertel et al. 1990) -----------------------
# two rows per person (recurrence and death, etype 1/2): strata(etype) + cluster(id); NA nodes.
datasets$colon <- export(colon, "colon")
cases$colon_cox_strata_cluster <- cox_case(
  coxph(Surv(time, status) ~ rx + sex + age + obstruct + nodes + strata(etype) + cluster(id), colon),
  "coxph(Surv(time, status) ~ rx + sex + age + obstruct + nodes + strata(etype) + cluster(id), colon)",
  py("rx + sex + age + obstruct + nodes", "time", "status", strata = "etype", cluster = "id"), zph = FALSE)
colon_death <- subset(colon, etype == 2)
datasets$colon_death <- export(colon_death, "colon_death")
cases$colon_death_cox_interaction <- cox_case(
  coxph(Surv(time, status) ~ rx * sex + age + nodes, colon_death),
  "coxph(Surv(time, status) ~ rx * sex + age + nodes, subset(colon, etype == 2))",
  py("rx * sex + age + nodes", "time", "status"))
cd_km <- survfit(Surv(time, status) ~ rx, colon_death, conf.type = "log-log")
cases$colon_death_km_rx <- c(km_out(cd_km, times = c(365, 730, 1826)),
                             list(r_call = "survfit(Surv(time, status) ~ rx, subset(colon, etype == 2), conf.type = 'log-log')",
                                  py = py(NULL, "time", "status", group = "rx", conf_type = "log-log")))
cases$colon_death_logrank_rx <- c(logrank_out(survdiff(Surv(time, status) ~ rx, colon_death)),
                                  list(r_call = "survdiff(Surv(time, status) ~ rx, subset(colon, etype == 2))",
                                       py = py(NULL, "time", "status", group = "rx")))

# ---- bladder2: recurrences of bladder cancer (Byar 1980), counting-process form ----------------
datasets$bladder2 <- export(bladder2, "bladder2")
cases$bladder2_andersen_gill <- cox_case(
  coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), bladder2),
  "coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), bladder2)",
  py("rx + number + size", "stop", "event", start = "start", cluster = "id"))
cases$bladder2_andersen_gill_breslow <- cox_case(
  coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), bladder2, ties = "breslow"),
  "coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), bladder2, ties = 'breslow')",
  py("rx + number + size", "stop", "event", start = "start", cluster = "id", ties = "breslow"), zph = FALSE)
cases$bladder2_pwp_total <- cox_case(
  coxph(Surv(start, stop, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2),
  "coxph(Surv(start, stop, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2)",
  py("rx + number + size", "stop", "event", start = "start", strata = "enum", cluster = "id"))

# ---- rats: litter-matched tumorigenesis (Mantel, Bohidar & Ciminera 1977) ----------------------
datasets$rats <- export(rats, "rats")
cases$rats_cox_cluster <- cox_case(
  coxph(Surv(time, status) ~ rx + sex + cluster(litter), rats),
  "coxph(Surv(time, status) ~ rx + sex + cluster(litter), rats)",
  py("rx + sex", "time", "status", cluster = "litter"))
cases$rats_cox_female_strata <- cox_case(
  coxph(Surv(time, status) ~ rx + strata(litter), subset(rats, sex == "f")),
  "coxph(Surv(time, status) ~ rx + strata(litter), subset(rats, sex == 'f'))  # 100 strata of 3",
  py("rx", "time", "status", strata = "litter", subset = "sex == 'f'"), zph = FALSE)
rats_km <- survfit(Surv(time, status) ~ rx, rats, conf.type = "log-log")
cases$rats_km_rx <- c(km_out(rats_km, times = c(50, 80, 100)),
                      list(r_call = "survfit(Surv(time, status) ~ rx, rats, conf.type = 'log-log')",
                           py = py(NULL, "time", "status", group = "rx", conf_type = "log-log")))
cases$rats_logrank_rx_strata <- c(logrank_out(survdiff(Surv(time, status) ~ rx + strata(sex), rats)),
                                  list(r_call = "survdiff(Surv(time, status) ~ rx + strata(sex), rats)",
                                       py = py(NULL, "time", "status", group = "rx", strata = "sex")))

# ---- heart (jasa1): Stanford heart transplant (Crowley & Hu 1977), time-varying transplant -----
datasets$heart <- export(heart, "heart")
cases$heart_cox_counting <- cox_case(
  coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart),
  "coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart)",
  py("age + year + surgery + transplant", "stop", "event", start = "start"))
cases$heart_cox_interaction_cluster <- cox_case(
  coxph(Surv(start, stop, event) ~ age * transplant + surgery + cluster(id), heart),
  "coxph(Surv(start, stop, event) ~ age * transplant + surgery + cluster(id), heart)",
  py("age * transplant + surgery", "stop", "event", start = "start", cluster = "id"))
cases$heart_cox_breslow <- cox_case(
  coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart, ties = "breslow"),
  "coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart, ties = 'breslow')",
  py("age + year + surgery + transplant", "stop", "event", start = "start", ties = "breslow"), zph = FALSE)

# ---- cgd: chronic granulomatous disease, interferon gamma (Fleming & Harrington 1991) ----------
cgd_data <- cgd[, c("id", "center", "treat", "sex", "age", "height", "weight", "inherit", "steroids",
                    "propylac", "hos.cat", "tstart", "enum", "tstop", "status")]
datasets$cgd <- export(cgd_data, "cgd")
cases$cgd_andersen_gill <- cox_case(
  coxph(Surv(tstart, tstop, status) ~ treat + sex + age + inherit + steroids + propylac + hos.cat + cluster(id), cgd),
  "coxph(Surv(tstart, tstop, status) ~ treat + sex + age + inherit + steroids + propylac + hos.cat + cluster(id), cgd)",
  py("treat + sex + age + inherit + steroids + propylac + hos.cat", "tstop", "status", start = "tstart", cluster = "id"))
cases$cgd_strata_hospital <- cox_case(
  coxph(Surv(tstart, tstop, status) ~ treat + age + inherit + strata(hos.cat) + cluster(id), cgd),
  "coxph(Surv(tstart, tstop, status) ~ treat + age + inherit + strata(hos.cat) + cluster(id), cgd)",
  py("treat + age + inherit", "tstop", "status", start = "tstart", strata = "hos.cat", cluster = "id"))

# ---- pbc: Mayo Clinic primary biliary cirrhosis (Fleming & Harrington 1991) -------------------
# status 0 censored, 1 transplant, 2 dead: death is the event; rows 313-418 lack trt (NA).
pbc_data <- pbc
pbc_data$death <- as.integer(pbc$status == 2)
datasets$pbc <- export(pbc_data, "pbc")
cases$pbc_cox_logs <- cox_case(
  coxph(Surv(time, status == 2) ~ age + edema + log(bili) + log(albumin) + log(protime), pbc),
  "coxph(Surv(time, status == 2) ~ age + edema + log(bili) + log(albumin) + log(protime), pbc)  # Dickson et al. 1989",
  py("age + edema + np.log(bili) + np.log(albumin) + np.log(protime)", "time", "death"))
cases$pbc_cox_trt_na <- cox_case(
  coxph(Surv(time, status == 2) ~ trt + age + sex + strata(edema), pbc),
  "coxph(Surv(time, status == 2) ~ trt + age + sex + strata(edema), pbc)  # 106 rows with trt NA omitted",
  py("trt + age + sex", "time", "death", strata = "edema"))
pbc_km <- survfit(Surv(time, status == 2) ~ trt, pbc, conf.type = "log-log")
cases$pbc_km_trt <- c(km_out(pbc_km, times = c(365, 1826, 3652)),
                      list(r_call = "survfit(Surv(time, status == 2) ~ trt, pbc, conf.type = 'log-log')  # trt NA omitted",
                           py = py(NULL, "time", "death", group = "trt", conf_type = "log-log")))
cases$pbc_logrank_trt <- c(logrank_out(survdiff(Surv(time, status == 2) ~ trt, pbc)),
                           list(r_call = "survdiff(Surv(time, status == 2) ~ trt, pbc)",
                                py = py(NULL, "time", "death", group = "trt")))
cases$pbc_rmst_trt_3650 <- c(rmst_out(pbc_km, 3650),
                             list(r_call = "summary(survfit(Surv(time, status == 2) ~ trt, pbc), rmean = 3650)$table",
                                  py = py(NULL, "time", "death", group = "trt")))

# ---- kidney: recurrence of infection in kidney patients (McGilchrist & Aisbett 1991) ----------
datasets$kidney <- export(kidney, "kidney")
cases$kidney_cox_cluster <- cox_case(
  coxph(Surv(time, status) ~ age + sex + disease + cluster(id), kidney),
  "coxph(Surv(time, status) ~ age + sex + disease + cluster(id), kidney)",
  py("age + sex + disease", "time", "status", cluster = "id"))
cases$kidney_cox_breslow <- cox_case(
  coxph(Surv(time, status) ~ age + sex + disease, kidney, ties = "breslow"),
  "coxph(Surv(time, status) ~ age + sex + disease, kidney, ties = 'breslow')",
  py("age + sex + disease", "time", "status", ties = "breslow"))

reference <- list(
  meta = list(
    r_version = R.version.string,
    survival_version = as.character(packageVersion("survival")),
    generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    script = "tests/reference/survival_datasets.R"
  ),
  datasets = datasets,
  cases = cases
)
writeLines(toJSON(reference, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE, null = "null"), out_file)
cat("wrote", out_file, "with", length(cases), "cases on", length(datasets), "datasets\n")
