/*
 * csv_share.h - what a distributed scan needs to split CSV files between
 * ranks by bytes: where the data rows start, quote and newline counts of a
 * byte range (so every rank learns the quote parity and line number at the
 * start of its range from the counts of the ranks before it), the first row
 * start at or after an offset, and a reader restricted to a range of rows.
 */
#ifndef PT_IO_CSV_SHARE_H
#define PT_IO_CSV_SHARE_H

#include "partita/io.h"

/* Byte offset and line number of the first data row (after BOM and
 * header), and the quote character in use. */
int64_t pt__csv_reader_body_offset(const pt_csv_reader *r);
int64_t pt__csv_reader_body_line(const pt_csv_reader *r);
char pt__csv_reader_quote(const pt_csv_reader *r);

/* Restricts an open reader (before its first pt_csv_next) to the rows that
 * start in [start, end): start must be a row start at line `line`, end a
 * row start or the end of the file. */
pt_status pt__csv_reader_set_range(pt_csv_reader *r, int64_t start, int64_t end, int64_t line,
                                   pt_error *err);

/* Quote characters and '\n' in bytes [lo, hi) of path. */
pt_status pt__csv_count_range(const char *path, int64_t lo, int64_t hi, char quote,
                              int64_t *quotes, int64_t *newlines, pt_error *err);

/* First row start at or after pos (> the body offset) given the quote
 * parity `inq` of the bytes before pos; fend (the file size) when none.
 * *newlines gets the '\n' in [pos, *start). */
pt_status pt__csv_row_start(const char *path, int64_t pos, int64_t fend, char quote, int inq,
                            int64_t *start, int64_t *newlines, pt_error *err);

#endif
