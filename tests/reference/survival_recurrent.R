# Reference numbers for rjtrial's recurrent-event models beyond Andersen-Gill and for
# split_followup (issue 11, part 4): Prentice-Williams-Peterson total- and gap-time models,
# the shared gamma frailty Cox model, and tmerge's counting-process tables.
#
# Run from the repository root (needs r-base-core, r-cran-survival, jsonlite; first run
# tests/reference/make_recurrent_split_trial.py for the generated trial's tables):
#
#     Rscript tests/reference/survival_recurrent.R
#
# Reads   tests/reference/datasets/{bladder2,cgd,kidney,rats}.csv  (survival_datasets.R)
#         tests/reference/survival_trial_recurrent.csv             (make_survival_trial.py)
#         tests/reference/recurrent_split_*.csv                     (make_recurrent_split_trial.py)
# Writes  tests/reference/datasets/{cgd0,jasa,pbc_baseline,pbcseq}.csv  tmerge's inputs
#         tests/reference/datasets/*_tmerge.csv                          tmerge's outputs
#         tests/reference/survival_recurrent.json
#
# The model fits use R's own datasets (the CSVs are the same data, exported by
# survival_datasets.R); each case records the Python call that must reproduce it ("py").
#
# Frailty: R's default search for theta (method "em": a search on sqrt(theta) by parabolic
# steps, frailty.brent) stops when the integrated log-likelihood changes by less than
# eps = 1e-5 relative, and the inner Newton loop at 1e-9; on kidney that leaves theta at
# 0.412 where the maximum is 0.40777. So every frailty case has
#   default  R's default call, kept to show how far its answer is from the maximum;
#   tight    the same call with eps = 1e-14 for theta and coxph.control(eps = 1e-14,
#            toler.chol = 1e-15, iter.max = 1000, outer.max = 1000); its history shows the
#            precision of theta (the last step);
#   exact    the fit at the tight theta, frailty(id, theta = theta, sparse = FALSE): the
#            exact information matrix (what rjtrial computes by default);
#   sparse   the fit at the tight theta, frailty(id, theta = theta): R's default sparse
#            approximation of the information (the frailties' block taken as diagonal);
#   optimize theta maximising the integrated likelihood found by optimize() over exact fits
#            at fixed theta (tol = 1e-12): a second R route to theta.
# Numbers are written with 17 significant digits, NA as null (see _survival_json.R).

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

here <- "tests/reference"
source(file.path(here, "_survival_json.R"))
out_file <- file.path(here, "survival_recurrent.json")
ds <- function(name) file.path(here, "datasets", name)
tight_control <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 1000, outer.max = 1000)

export_csv <- function(data, name) {
  for (f in names(data)) {
    if (is.factor(data[[f]])) data[[f]] <- as.character(data[[f]])
    if (inherits(data[[f]], "Date")) data[[f]] <- format(data[[f]])
  }
  write.csv(data, ds(paste0(name, ".csv")), row.names = FALSE, na = "")
  paste0("datasets/", name, ".csv")
}

cases <- list()

# ============================================================================ PWP and AG
# enum: the event number of each interval, 1 + the events of the person before it.
event_number <- function(id, event) ave(event, id, FUN = function(e) cumsum(c(0, head(e, -1)))) + 1

cox_case <- function(fit, r_call, py) {
  out <- cox_out(fit, zph = FALSE)
  out$r_call <- r_call
  out$py <- py
  out$n_omitted <- num(length(fit$na.action))
  out
}
pwp_py <- function(data, formula, start, stop, event, id, timescale, ...) {
  list(model = "pwp", data = data, formula = formula, start = start, stop = stop, event = event, id = id,
       timescale = timescale, ...)
}
ag_py <- function(data, formula, start, stop, event, id, ...) {
  list(model = "andersen_gill", data = data, formula = formula, start = start, stop = stop, event = event,
       id = id, ...)
}

# ---- bladder2: bladder cancer recurrences (Byar 1980; Wei, Lin & Weissfeld 1989) --------------
stopifnot(all(bladder2$enum == event_number(bladder2$id, bladder2$event)))
cases$bladder2_ag <- cox_case(
  coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), bladder2),
  "coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), bladder2)",
  ag_py("bladder2", "rx + number + size", "start", "stop", "event", "id"))
cases$bladder2_pwp_total <- cox_case(
  coxph(Surv(start, stop, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2),
  "coxph(Surv(start, stop, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2)",
  pwp_py("bladder2", "rx + number + size", "start", "stop", "event", "id", "total"))
cases$bladder2_pwp_gap <- cox_case(
  coxph(Surv(stop - start, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2),
  "coxph(Surv(stop - start, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2)",
  pwp_py("bladder2", "rx + number + size", "start", "stop", "event", "id", "gap"))
cases$bladder2_pwp_total_capped3 <- cox_case(
  coxph(Surv(start, stop, event) ~ rx + number + size + strata(pmin(enum, 3)) + cluster(id), bladder2),
  "coxph(Surv(start, stop, event) ~ rx + number + size + strata(pmin(enum, 3)) + cluster(id), bladder2)",
  pwp_py("bladder2", "rx + number + size", "start", "stop", "event", "id", "total", max_event_number = 3))
cases$bladder2_pwp_gap_breslow <- cox_case(
  coxph(Surv(stop - start, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2, ties = "breslow"),
  "coxph(Surv(stop - start, event) ~ rx + number + size + strata(enum) + cluster(id), bladder2, ties = 'breslow')",
  pwp_py("bladder2", "rx + number + size", "start", "stop", "event", "id", "gap", ties = "breslow"))

# ---- cgd: infections in chronic granulomatous disease (Fleming & Harrington 1991) -------------
stopifnot(all(cgd$enum == event_number(cgd$id, cgd$status)))
cases$cgd_ag <- cox_case(
  coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + cluster(id), cgd),
  "coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + cluster(id), cgd)",
  ag_py("cgd", "treat + inherit + steroids + age", "tstart", "tstop", "status", "id"))
cases$cgd_pwp_total <- cox_case(
  coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + strata(enum) + cluster(id), cgd),
  "coxph(Surv(tstart, tstop, status) ~ treat + inherit + steroids + age + strata(enum) + cluster(id), cgd)",
  pwp_py("cgd", "treat + inherit + steroids + age", "tstart", "tstop", "status", "id", "total"))
cases$cgd_pwp_gap <- cox_case(
  coxph(Surv(tstop - tstart, status) ~ treat + inherit + steroids + age + strata(enum) + cluster(id), cgd),
  "coxph(Surv(tstop - tstart, status) ~ treat + inherit + steroids + age + strata(enum) + cluster(id), cgd)",
  pwp_py("cgd", "treat + inherit + steroids + age", "tstart", "tstop", "status", "id", "gap"))
cases$cgd_pwp_gap_capped2_strata <- cox_case(
  coxph(Surv(tstop - tstart, status) ~ treat + age + strata(pmin(enum, 2), hos.cat) + cluster(id), cgd),
  "coxph(Surv(tstop - tstart, status) ~ treat + age + strata(pmin(enum, 2), hos.cat) + cluster(id), cgd)",
  pwp_py("cgd", "treat + age", "tstart", "tstop", "status", "id", "gap", max_event_number = 2, strata = "hos.cat"))

# ---- the generated recurrent trial (make_survival_trial.py) ----------------------------------
rec <- read.csv(file.path(here, "survival_trial_recurrent.csv"))
rec <- rec[order(rec$id, rec$start), ]
rec$enum <- event_number(rec$id, rec$event)
cases$trial_ag <- cox_case(
  coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), rec),
  "coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), rec)",
  ag_py("trial", "arm + age + prior", "start", "stop", "event", "id"))
cases$trial_pwp_total <- cox_case(
  coxph(Surv(start, stop, event) ~ arm + age + prior + strata(enum) + cluster(id), rec),
  "coxph(Surv(start, stop, event) ~ arm + age + prior + strata(enum) + cluster(id), rec)",
  pwp_py("trial", "arm + age + prior", "start", "stop", "event", "id", "total"))
cases$trial_pwp_gap <- cox_case(
  coxph(Surv(stop - start, event) ~ arm + age + prior + strata(enum) + cluster(id), rec),
  "coxph(Surv(stop - start, event) ~ arm + age + prior + strata(enum) + cluster(id), rec)",
  pwp_py("trial", "arm + age + prior", "start", "stop", "event", "id", "gap"))
cases$trial_pwp_total_capped4_site <- cox_case(
  coxph(Surv(start, stop, event) ~ arm + age + prior + strata(pmin(enum, 4), site) + cluster(id), rec),
  "coxph(Surv(start, stop, event) ~ arm + age + prior + strata(pmin(enum, 4), site) + cluster(id), rec)",
  pwp_py("trial", "arm + age + prior", "start", "stop", "event", "id", "total", max_event_number = 4,
         strata = "site"))

# ============================================================================ gamma frailty
frail_numbers <- function(fit, p, sparse) {
  # coefficients, var, var2, the frailties and their variance, df, likelihoods, frailty test
  h <- fit$history[[1]]
  theta <- if (!is.null(h$history)) h$history[nrow(h$history), 1] else h$theta
  beta <- fit$coefficients[seq_len(p)]
  if (sparse) {
    frail <- fit$frail
    fvar <- fit$fvar
    fchisq <- sum(frail^2 / fvar)
  } else {
    kk <- p + seq_len(length(fit$coefficients) - p)
    frail <- fit$coefficients[kk]
    fvar <- diag(fit$var)[kk]
    fchisq <- coxph.wtest(fit$var[kk, kk], frail)$test
  }
  nterms <- length(fit$df)
  dfs <- fit$df
  list(
    theta = num(theta),
    terms = names(beta),
    coef = num(unname(beta), scalar = FALSE),
    var = nummat(as.matrix(fit$var)[seq_len(p), seq_len(p), drop = FALSE]),
    var2 = nummat(as.matrix(fit$var2)[seq_len(p), seq_len(p), drop = FALSE]),
    se = num(sqrt(diag(as.matrix(fit$var))[seq_len(p)]), scalar = FALSE),
    se2 = num(sqrt(diag(as.matrix(fit$var2))[seq_len(p)]), scalar = FALSE),
    frail = num(unname(frail), scalar = FALSE),
    frail_var = num(unname(fvar), scalar = FALSE),
    df = num(unname(dfs), scalar = FALSE),
    loglik = num(fit$loglik, scalar = FALSE),           # c(null, PL at the estimate)
    penalty = num(fit$penalty[2]),
    penalized_loglik = num(fit$loglik[2] - fit$penalty[2]),
    integrated_loglik = num(h$c.loglik),
    logtest = num(2 * (fit$loglik[2] - fit$loglik[1])),
    logtest_df = num(sum(dfs)),
    logtest_p = num(pchisq(2 * (fit$loglik[2] - fit$loglik[1]), sum(dfs), lower.tail = FALSE)),
    frailty_chisq = num(fchisq),
    frailty_p = num(pchisq(fchisq, max(dfs[nterms], 0.5), lower.tail = FALSE)),
    iter = num(fit$iter, scalar = FALSE),
    n = num(fit$n),
    nevent = num(fit$nevent)
  )
}

frailty_case <- function(lhs, rhs, group, data_name, data, py, ties = "efron") {
  # lhs "Surv(time, status)", rhs "age + sex"; group "id"
  p <- length(coef(coxph(as.formula(paste(lhs, "~", rhs)), data)))  # covariates (strata() terms have none)
  fml <- function(frail) as.formula(paste(lhs, "~", rhs, "+", frail))
  call_text <- function(frail, extra = "") {
    paste0("coxph(", lhs, " ~ ", rhs, " + ", frail, ", ", data_name,
           if (ties != "efron") paste0(", ties = '", ties, "'") else "", extra, ")")
  }
  fit_default <- coxph(fml(paste0("frailty(", group, ")")), data, ties = ties)
  fit_tight <- coxph(fml(paste0("frailty(", group, ", eps = 1e-14)")), data, ties = ties, control = tight_control)
  hist <- fit_tight$history[[1]]$history
  theta <- hist[nrow(hist), 1]
  theta_text <- sprintf("%.17g", theta)
  fit_exact <- coxph(fml(paste0("frailty(", group, ", theta = ", theta_text, ", sparse = FALSE)")), data,
                     ties = ties, control = tight_control)
  fit_sparse <- coxph(fml(paste0("frailty(", group, ", theta = ", theta_text, ", sparse = TRUE)")), data,
                      ties = ties, control = tight_control)
  closs <- function(t) {
    f <- coxph(fml(paste0("frailty(", group, ", theta = ", sprintf("%.17g", t), ", sparse = FALSE)")), data,
               ties = ties, control = tight_control)
    f$history[[1]]$c.loglik
  }
  opt <- optimize(closs, c(theta / 2, theta * 2), maximum = TRUE, tol = 1e-12)
  list(
    r_call = call_text(paste0("frailty(", group, ")")),
    r_call_tight = paste(call_text(paste0("frailty(", group, ", eps = 1e-14)"),
                               ", control = coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 1000, outer.max = 1000)")),
    r_call_exact = call_text(paste0("frailty(", group, ", theta = <tight theta>, sparse = FALSE)")),
    r_call_sparse = call_text(paste0("frailty(", group, ", theta = <tight theta>, sparse = TRUE)")),
    py = c(list(model = "frailty", data = data_name, formula = py$formula, frailty = group), py[names(py) != "formula"],
           if (ties != "efron") list(ties = ties) else list()),
    n_groups = num(length(unique(data[[group]]))),
    default = frail_numbers(fit_default, p, sparse = length(unique(data[[group]])) > 5),
    tight = c(frail_numbers(fit_tight, p, sparse = length(unique(data[[group]])) > 5),
              list(history = nummat(hist),
                   theta_last_step = num(abs(hist[nrow(hist), 1] - hist[nrow(hist) - 1, 1])))),
    exact = frail_numbers(fit_exact, p, sparse = FALSE),
    sparse = frail_numbers(fit_sparse, p, sparse = TRUE),
    optimize = list(theta = num(opt$maximum), integrated_loglik = num(opt$objective))
  )
}

kidney_r <- kidney
cases$kidney_frailty <- frailty_case("Surv(time, status)", "age + sex", "id", "kidney", kidney,
                                     list(formula = "age + sex", time = "time", event = "status"))
cases$kidney_frailty_disease <- frailty_case("Surv(time, status)", "age + sex + disease", "id", "kidney", kidney,
                                             list(formula = "age + sex + disease", time = "time", event = "status"))
cases$kidney_frailty_breslow <- frailty_case("Surv(time, status)", "age + sex", "id", "kidney", kidney,
                                             list(formula = "age + sex", time = "time", event = "status"),
                                             ties = "breslow")
cases$rats_frailty <- frailty_case("Surv(time, status)", "rx + sex", "litter", "rats", rats,
                                   list(formula = "rx + sex", time = "time", event = "status"))
cases$bladder2_frailty <- frailty_case("Surv(start, stop, event)", "rx + number + size", "id", "bladder2", bladder2,
                                       list(formula = "rx + number + size", start = "start", time = "stop",
                                            event = "event"))
cases$cgd_frailty <- frailty_case("Surv(tstart, tstop, status)", "treat + inherit + steroids + age", "id", "cgd", cgd,
                                  list(formula = "treat + inherit + steroids + age", start = "tstart", time = "tstop",
                                       event = "status"))
cases$trial_frailty <- frailty_case("Surv(start, stop, event)", "arm + age + prior", "id", "rec", rec,
                                    list(formula = "arm + age + prior", start = "start", time = "stop",
                                         event = "event"))
cases$trial_frailty_strata <- frailty_case("Surv(start, stop, event)", "arm + age + prior + strata(site)", "id",
                                           "rec", rec,
                                           list(formula = "arm + age + prior", start = "start", time = "stop",
                                                event = "event", strata = "site"))

# ============================================================================ tmerge
tcount <- function(x) {
  tc <- attr(x, "tcount")
  list(variables = rownames(tc), columns = colnames(tc), counts = nummat(unclass(tc)))
}
split_cases <- list()
datasets <- list()

# ---- cgd0: the vignette's example, wide event times etime1..etime7 ---------------------------
datasets$cgd0 <- export_csv(cgd0, "cgd0")
newcgd <- tmerge(data1 = cgd0[, 1:13], data2 = cgd0, id = id, tstop = futime)
newcgd <- tmerge(newcgd, cgd0, id = id, infect = event(etime1), infect = event(etime2), infect = event(etime3),
                 infect = event(etime4), infect = event(etime5), infect = event(etime6), infect = event(etime7))
tc_cgd <- tcount(newcgd)
newcgd <- tmerge(newcgd, newcgd, id, enum = cumtdc(tstart))
split_cases$cgd0 <- list(
  r_call = paste("tmerge(cgd0[, 1:13], cgd0, id = id, tstop = futime);",
                 "tmerge(., cgd0, id = id, infect = event(etime1), ..., infect = event(etime7));",
                 "tmerge(., ., id, enum = cumtdc(tstart))"),
  output = export_csv(newcgd, "cgd0_tmerge"), tcount = tc_cgd, tcount_enum = tcount(newcgd))
cases$cgd0_tmerge_ag <- cox_case(
  coxph(Surv(tstart, tstop, infect) ~ treat + inherit + steroids + cluster(id), newcgd),
  "coxph(Surv(tstart, tstop, infect) ~ treat + inherit + steroids, data = newcgd, cluster = id)",
  ag_py("cgd0_tmerge", "treat + inherit + steroids", "tstart", "tstop", "infect", "id"))

# ---- jasa: Stanford heart transplants, transplant as a time-dependent covariate --------------
jasa$subject <- 1:nrow(jasa)
tdata <- with(jasa, data.frame(subject = subject,
                               futime = as.numeric(pmax(.5, fu.date - accept.dt)),
                               txtime = as.numeric(ifelse(tx.date == fu.date, (tx.date - accept.dt) - .5,
                                                          (tx.date - accept.dt))),
                               fustat = fustat))
datasets$jasa <- export_csv(jasa, "jasa")
datasets$jasa_times <- export_csv(tdata, "jasa_times")
sdata <- tmerge(jasa, tdata, id = subject, death = event(futime, fustat), trt = tdc(txtime),
                options = list(idname = "subject"))
split_cases$jasa <- list(
  r_call = "tmerge(jasa, tdata, id = subject, death = event(futime, fustat), trt = tdc(txtime), options = list(idname = 'subject'))",
  output = export_csv(sdata, "jasa_tmerge"), tcount = tcount(sdata))
sdata$age <- sdata$age - 48
sdata$year <- as.numeric(sdata$accept.dt - as.Date("1967-10-01")) / 365.25
fit_jasa <- coxph(Surv(tstart, tstop, death) ~ age * trt + surgery + year, data = sdata, ties = "breslow")
cases$jasa_tmerge_cox <- cox_case(fit_jasa,
  "coxph(Surv(tstart, tstop, death) ~ age*trt + surgery + year, data = sdata, ties = 'breslow')  # age - 48, year since 1967-10-01",
  list(model = "cox", data = "jasa_tmerge", formula = "age * trt + surgery + year", start = "tstart", time = "tstop",
       event = "death", ties = "breslow"))

# ---- pbc + pbcseq: laboratory values as time-dependent covariates ----------------------------
temp <- subset(pbc, id <= 312, select = c(id:sex, stage))
datasets$pbc_baseline <- export_csv(temp, "pbc_baseline")
datasets$pbcseq <- export_csv(pbcseq, "pbcseq")
pbc2 <- tmerge(temp, temp, id = id, death = event(time, status))
pbc2 <- tmerge(pbc2, pbcseq, id = id, ascites = tdc(day, ascites), bili = tdc(day, bili),
               albumin = tdc(day, albumin), protime = tdc(day, protime), alk.phos = tdc(day, alk.phos))
split_cases$pbc <- list(
  r_call = paste("tmerge(temp, temp, id = id, death = event(time, status));",
                 "tmerge(., pbcseq, id = id, ascites = tdc(day, ascites), bili = tdc(day, bili),",
                 "albumin = tdc(day, albumin), protime = tdc(day, protime), alk.phos = tdc(day, alk.phos))"),
  output = export_csv(pbc2, "pbc_tmerge"), tcount = tcount(pbc2))
cases$pbc_tmerge_cox <- cox_case(
  coxph(Surv(tstart, tstop, death == 2) ~ log(bili) + log(protime), pbc2),
  "coxph(Surv(tstart, tstop, death == 2) ~ log(bili) + log(protime), pbc2)",
  list(model = "cox", data = "pbc_tmerge", formula = "np.log(bili) + np.log(protime)", start = "tstart",
       time = "tstop", event = "died"))

# ---- the generated trial (make_recurrent_split_trial.py) --------------------------------------
fu <- read.csv(file.path(here, "recurrent_split_followup.csv"))
off <- read.csv(file.path(here, "recurrent_split_offences.csv"))
cus <- read.csv(file.path(here, "recurrent_split_custody.csv"))
conf <- read.csv(file.path(here, "recurrent_split_conferences.csv"))
tm <- tmerge(fu, fu, id = id, tstop = followup_days)
tm <- tmerge(tm, off, id = id, reoffence = event(day), offences = cumevent(day))
tc1 <- tcount(tm)
tm <- tmerge(tm, off, id = id, seriousness = event(day, seriousness))
tc2 <- tcount(tm)
tm <- tmerge(tm, cus, id = id, custody = tdc(day, in_custody, 0))
tc3 <- tcount(tm)
tm <- tmerge(tm, fu, id = id, programme = tdc(programme_day))
tc4 <- tcount(tm)
tm <- tmerge(tm, conf, id = id, conferences = cumtdc(day))
tc5 <- tcount(tm)
tm <- tmerge(tm, off, id = id, harm = cumtdc(day, seriousness, 0))
split_cases$trial <- list(
  r_call = paste("tm <- tmerge(fu, fu, id = id, tstop = followup_days);",
                 "tm <- tmerge(tm, off, id = id, reoffence = event(day), offences = cumevent(day));",
                 "tm <- tmerge(tm, off, id = id, seriousness = event(day, seriousness));",
                 "tm <- tmerge(tm, cus, id = id, custody = tdc(day, in_custody, 0));",
                 "tm <- tmerge(tm, fu, id = id, programme = tdc(programme_day));",
                 "tm <- tmerge(tm, conf, id = id, conferences = cumtdc(day));",
                 "tm <- tmerge(tm, off, id = id, harm = cumtdc(day, seriousness, 0))"),
  output = export_csv(tm, "trial_tmerge"),
  tcount = tcount(tm))
tm$enum <- event_number(tm$id, tm$reoffence)
cases$trial_tmerge_ag <- cox_case(
  coxph(Surv(tstart, tstop, reoffence) ~ arm + custody + programme + prior + cluster(id), tm),
  "coxph(Surv(tstart, tstop, reoffence) ~ arm + custody + programme + prior + cluster(id), tm)",
  ag_py("trial_tmerge", "arm + custody + programme + prior", "tstart", "tstop", "reoffence", "id"))
cases$trial_tmerge_pwp_gap <- cox_case(
  coxph(Surv(tstop - tstart, reoffence) ~ arm + custody + prior + strata(enum) + cluster(id), tm),
  "coxph(Surv(tstop - tstart, reoffence) ~ arm + custody + prior + strata(enum) + cluster(id), tm)",
  pwp_py("trial_tmerge", "arm + custody + prior", "tstart", "tstop", "reoffence", "id", "gap"))

# ============================================================================ write
reference <- list(
  meta = list(
    r_version = R.version.string,
    survival_version = as.character(packageVersion("survival")),
    generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    script = "tests/reference/survival_recurrent.R"
  ),
  datasets = datasets,
  cases = cases,
  split = split_cases
)
writeLines(toJSON(reference, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE, null = "null", digits = NA),
           out_file)
print(warnings())
cat("wrote", out_file, "with", length(cases), "cases and", length(split_cases), "tmerge tables\n")
