#pragma once
// execvp's PATH search, in two halves: the candidate list is built before fork (it allocates),
// and the exec loop runs between fork and exec (async-signal-safe). Shared by spawn() and
// telecap-guard, so both report the same errno for the same program.

#include <string>
#include <vector>

namespace telecap::spawn {

// The paths execve should try for `file`, in order: `file` itself if it contains a '/', else
// each entry of `path` (the PATH value; nullptr means glibc's default "/bin:/usr/bin") joined
// with `file`, an empty entry meaning ".". An empty `file` gives no candidate.
// Throws std::bad_alloc only.
std::vector<std::string> exec_candidates(const std::string& file, const char* path);

// execve()s each candidate in turn with execvp's error rules: keep searching past "not here"
// errors (ENOENT, ENOTDIR, ESTALE, ENODEV, ETIMEDOUT), stop at any other, and prefer EACCES if
// one was seen. There is no /bin/sh fallback for ENOEXEC, unlike execvp. Returns only on failure,
// with the errno to report (ENOENT for an empty list). Async-signal-safe.
int exec_candidates_errno(const char* const* candidates, std::size_t count, char* const argv[],
                          char* const envp[]) noexcept;

}  // namespace telecap::spawn
