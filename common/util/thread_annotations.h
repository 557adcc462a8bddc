// Clang's thread-safety analysis attributes (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html),
// as LevelDB's port/thread_annotations.h and Abseil's base/thread_annotations.h spell them. Under
// clang with -Wthread-safety the compiler checks that every member marked GUARDED_BY(mu) is read
// and written only with mu held, and that a function marked REQUIRES(mu) is only called with it
// held; with other compilers the macros expand to nothing. scripts/thread_safety.sh runs the
// check (CI fails on a warning). Abseil (through gRPC's headers) defines the same names with the
// same meaning; whichever header comes first defines them.
#ifndef FEDMED_COMMON_UTIL_THREAD_ANNOTATIONS_H_
#define FEDMED_COMMON_UTIL_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define FEDMED_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FEDMED_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (Mutex).
#ifndef CAPABILITY
#define CAPABILITY(x) FEDMED_THREAD_ANNOTATION(capability(x))
#endif
// An RAII type that holds a lock for its lifetime (MutexLock).
#ifndef SCOPED_CAPABILITY
#define SCOPED_CAPABILITY FEDMED_THREAD_ANNOTATION(scoped_lockable)
#endif
// A member that may be used only with the given lock held.
#ifndef GUARDED_BY
#define GUARDED_BY(x) FEDMED_THREAD_ANNOTATION(guarded_by(x))
#endif
// A pointer member whose pointee may be used only with the given lock held.
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) FEDMED_THREAD_ANNOTATION(pt_guarded_by(x))
#endif
// A function that must be called with the given locks held.
#ifndef REQUIRES
#define REQUIRES(...) FEDMED_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#endif
// A function that must be called without the given locks held (it takes them).
#ifndef EXCLUDES
#define EXCLUDES(...) FEDMED_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#endif
// A function that takes / releases the given locks (or, on a lock type, itself).
#ifndef ACQUIRE
#define ACQUIRE(...) FEDMED_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#endif
#ifndef RELEASE
#define RELEASE(...) FEDMED_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#endif
// A function that checks at run time that the lock is held; the analysis then assumes it.
#ifndef ASSERT_CAPABILITY
#define ASSERT_CAPABILITY(x) FEDMED_THREAD_ANNOTATION(assert_capability(x))
#endif
// A function the analysis does not check (say why beside it).
#ifndef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS FEDMED_THREAD_ANNOTATION(no_thread_safety_analysis)
#endif

#endif  // FEDMED_COMMON_UTIL_THREAD_ANNOTATIONS_H_
