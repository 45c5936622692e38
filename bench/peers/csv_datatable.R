# Peer: data.table::fread into a data.table, timed.
# usage: Rscript csv_datatable.R FILE THREADS REPEAT
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(data.table))
setDTthreads(as.integer(args[2]))
best <- Inf
rows <- 0
for (i in seq_len(as.integer(args[3]))) {
  t0 <- proc.time()[["elapsed"]]
  dt <- fread(args[1], showProgress = FALSE)
  best <- min(best, proc.time()[["elapsed"]] - t0)
  rows <- nrow(dt)
  rm(dt)
  invisible(gc())
}
cat(sprintf("peer=data.table rows=%d seconds=%.3f\n", rows, best))
