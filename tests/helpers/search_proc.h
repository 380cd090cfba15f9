/* search_proc.h - test helpers for the search tests: start the starhil binary
 * asynchronously (so a test can kill -9 it at a random moment), wait for it,
 * and make temporary directories. */
#ifndef SH_TEST_SEARCH_PROC_H
#define SH_TEST_SEARCH_PROC_H

#include <sys/types.h>

/* Starts argv (argv[0] a path) with stdout/stderr to the given files
 * (NULL: /dev/null).  Returns the pid or -1. */
pid_t search_spawn(char *const argv[], const char *out_path, const char *err_path);
/* Directory the spawned programs start in (NULL or "": inherit). */
void search_set_cwd(const char *dir);
/* Waits for pid; returns its exit code, 128+signal if killed, -1 on error. */
int search_wait(pid_t pid);
/* Runs argv to completion (search_spawn + search_wait). */
int search_run(char *const argv[], const char *out_path, const char *err_path);
/* mkdtemp under /tmp; path must hold 64 bytes. 0 or -1. */
int search_tmpdir(char path[64]);
/* Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *search_read_file(const char *path);
/* rm -r of a directory made by search_tmpdir (files one level deep only). */
void search_rmdir(const char *path);

#endif
