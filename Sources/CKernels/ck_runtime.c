/* CPU detection, the worker pool and per-thread scratch memory. */
#include "ck_internal.h"

#define CK_MAX_THREADS 64

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#else
#define CK_PAUSE() ((void)0)
#endif

/* ---- CPU level --------------------------------------------------------------------------------- */

static atomic_int g_detected = -1;
static atomic_int g_forced = -1;

int ck_cpu_level(void) {
    int level = atomic_load(&g_detected);
    if (level >= 0) return level;
    level = CK_LEVEL_PORTABLE;
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = CK_LEVEL_AVX2;
    if (level == CK_LEVEL_AVX2 && __builtin_cpu_supports("avx512f")) level = CK_LEVEL_AVX512;
#endif
    atomic_store(&g_detected, level);
    return level;
}

static _Thread_local int tl_level = -1;
static _Thread_local int tl_threads = 0;

void ck_set_local_level(int level) { tl_level = level < 0 ? -1 : level; }
void ck_set_local_threads(int threads) { tl_threads = threads < 1 ? 0 : threads > 64 ? 64 : threads; }

int ck_level(void) {
    int forced = tl_level >= 0 ? tl_level : atomic_load(&g_forced);
    int best = ck_cpu_level();
    return forced >= 0 && forced < best ? forced : best;
}

int ck_set_level(int level) {
    atomic_store(&g_forced, level < 0 ? -1 : level);
    return ck_level();
}

ck_epilogue_fn ck_epilogue(void) {
    switch (ck_level()) {
#if defined(__x86_64__)
    case CK_LEVEL_AVX512: return ck_epilogue_avx512;
    case CK_LEVEL_AVX2: return ck_epilogue_avx2;
#endif
    default: return ck_epilogue_portable;
    }
}

ck_kernel_fn ck_kernel(void) {
    switch (ck_level()) {
#if defined(__x86_64__)
    case CK_LEVEL_AVX512: return ck_kernel_avx512;
    case CK_LEVEL_AVX2: return ck_kernel_avx2;
#endif
    default: return ck_kernel_portable;
    }
}

double ck_task_balance(int count, const double *sizes, int threads) {
    if (threads <= 1 || count <= 0) return 1.0;
    double load[CK_MAX_THREADS] = {0}, total = 0, longest = 0;
    if (threads > CK_MAX_THREADS) threads = CK_MAX_THREADS;
    for (int i = 0; i < count; i++) {
        int t = 0;
        for (int u = 1; u < threads; u++)
            if (load[u] < load[t]) t = u;
        load[t] += sizes[i];
        total += sizes[i];
        if (load[t] > longest) longest = load[t];
    }
    return longest > 0 ? total / (threads * longest) : 1.0;
}

/* Buffers from this size up are mapped pages of their own: freeing one gives its memory back at once.
 * From the heap, a grown buffer's old block would stay resident as a hole that the allocator keeps
 * (glibc raises its mmap threshold after the first large free, so later large blocks come from the
 * heap): ResNet-50 at batch 8 measured 10-16 MiB more peak RSS that way. */
enum { CK_MAP_MIN = 256 * 1024 };

/* ---- Scratch ----------------------------------------------------------------------------------- */

typedef struct scratch_slots {
    float *p[4];
    size_t cap[4];   /* floats */
    size_t bytes[4]; /* as allocated */
} scratch_slots;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
    scratch_slots *s = v;
    for (int i = 0; i < 4; i++) ck_buffer_free(s->p[i], s->bytes[i]);
    free(s);
}

static void scratch_init(void) { pthread_key_create(&g_scratch_key, scratch_free); }

float *ck_scratch(int slot, size_t count) {
    pthread_once(&g_scratch_once, scratch_init);
    scratch_slots *s = pthread_getspecific(g_scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) abort();
        pthread_setspecific(g_scratch_key, s);
    }
    if (s->cap[slot] < count) {
        ck_buffer_free(s->p[slot], s->bytes[slot]);
        size_t bytes = ((count * sizeof(float)) + 63) & ~(size_t)63;
        /* Always mapped (the untouched rest of a small one is never resident): from the heap, the
         * worker threads' small slots would grow an allocator arena of their own. */
        if (bytes < CK_MAP_MIN) bytes = CK_MAP_MIN;
        s->p[slot] = ck_buffer_alloc(bytes);
        if (!s->p[slot]) abort();
        s->cap[slot] = count;
        s->bytes[slot] = bytes;
    }
    return s->p[slot];
}

/* ---- Worker pool ------------------------------------------------------------------------------- */

static atomic_int g_threads = 0; /* 0: not set yet, use the CPU count */
static pthread_mutex_t g_job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static atomic_uint g_generation = 0;
static atomic_int g_open = 0;   /* 1 while the current job accepts workers */
static atomic_int g_active = 0; /* workers inside the current job */
static ck_task_fn g_fn = NULL;
static void *g_context = NULL;
static int g_started = 0; /* workers started (ids 1 ... g_started); guarded by g_job_lock */
static atomic_int g_job_threads = 0;

int ck_threads(void) {
    if (tl_threads > 0) return tl_threads;
    int t = atomic_load(&g_threads);
    if (t > 0) return t;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    t = n < 1 ? 1 : n > CK_MAX_THREADS ? CK_MAX_THREADS : (int)n;
    return t;
}

void ck_set_threads(int threads) {
    atomic_store(&g_threads, threads < 1 ? 1 : threads > CK_MAX_THREADS ? CK_MAX_THREADS : threads);
}

/* Each thread's share of a job's tasks: a contiguous range, so that a thread computes the same part of
 * every layer (the same rows of a plane, the same output channels) and finds the activations it wrote in
 * its own cache. A range is taken from its front by its owner and from its back by a thread that has
 * finished its own; `state` packs the next task (low 32 bits) and the end (high 32 bits). Measured
 * against one shared counter (tasks handed out in order to whichever thread asks), 2 threads:
 * ResNet-50's 64 -> 256 1x1 layer at 56 x 56, batch 1, 0.91-0.93x; whole networks (interleaved) ResNet-50
 * at batch 1 0.94-0.97x by default and 0.91-0.94x with LoadOptions.memory = .compact, ResNet-152 at
 * batch 1 1.01x and 0.95x, ResNet-50 at batch 8 0.97x and 0.95x. */
typedef struct task_range {
    _Atomic uint64_t state;
    char pad[56];
} task_range;
static task_range g_ranges[CK_MAX_THREADS];

static inline uint64_t range_pack(uint32_t next, uint32_t end) { return (uint64_t)next | ((uint64_t)end << 32); }

/* Takes the front task of range r (owner) or its last one (thief); -1 when the range is empty. */
static int range_take(task_range *r, int from_back) {
    uint64_t s = atomic_load_explicit(&r->state, memory_order_acquire);
    for (;;) {
        const uint32_t next = (uint32_t)s, end = (uint32_t)(s >> 32);
        if (next >= end) return -1;
        const uint64_t want = from_back ? range_pack(next, end - 1) : range_pack(next + 1, end);
        if (atomic_compare_exchange_weak_explicit(&r->state, &s, want, memory_order_acq_rel, memory_order_acquire))
            return (int)(from_back ? end - 1 : next);
    }
}

static void run_tasks(int worker) {
    const int n = atomic_load(&g_job_threads);
    for (int t; (t = range_take(&g_ranges[worker], 0)) >= 0;) g_fn(g_context, t, worker);
    for (int i = 1; i < n; i++) {
        task_range *victim = &g_ranges[(worker + i) % n];
        for (int t; (t = range_take(victim, 1)) >= 0;) g_fn(g_context, t, worker);
    }
}

/* Seconds a worker spins for the next job before it sleeps. */
#define CK_SPIN_SECONDS 1e-3

static double ck_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *worker_main(void *arg) {
    /* The argument packs the worker id (low 8 bits) and the generation current when it was spawned. */
    uint64_t packed = (uint64_t)(uintptr_t)arg;
    int id = (int)(packed & 0xFF);
    unsigned seen = (unsigned)(packed >> 8);
    for (;;) {
        /* Spin about a millisecond before sleeping: a model's layers follow each other within that,
         * and waking a sleeping thread costs tens of microseconds (more in a virtual machine), during
         * which the caller runs the tasks alone. The clock is read every 64 pauses. */
        unsigned gen;
        const double spin_until = ck_now() + CK_SPIN_SECONDS;
        for (int spins = 1; (gen = atomic_load(&g_generation)) == seen; spins++) {
            CK_PAUSE();
            if ((spins & 63) == 0 && ck_now() > spin_until) break;
        }
        if (gen == seen) {
            pthread_mutex_lock(&g_wake_lock);
            while ((gen = atomic_load(&g_generation)) == seen) pthread_cond_wait(&g_wake, &g_wake_lock);
            pthread_mutex_unlock(&g_wake_lock);
        }
        /* Join only while the job is open: the poster waits for joined workers, never for late or
         * sleeping ones (on a busy machine the caller then simply runs the remaining tasks itself). */
        atomic_fetch_add(&g_active, 1);
        if (atomic_load(&g_open) && id < atomic_load(&g_job_threads)) {
            seen = atomic_load(&g_generation);
            run_tasks(id);
        } else {
            seen = gen;
        }
        atomic_fetch_sub(&g_active, 1);
    }
    return NULL;
}

void ck_parallel_for(int tasks, ck_task_fn fn, void *context) {
    if (tasks <= 0) return;
    int threads = ck_threads();
    if (threads > tasks) threads = tasks;
    if (threads <= 1 || pthread_mutex_trylock(&g_job_lock) != 0) {
        for (int t = 0; t < tasks; t++) fn(context, t, 0);
        return;
    }
    while (g_started < threads - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, worker_main,
                           (void *)(uintptr_t)(((uint64_t)atomic_load(&g_generation) << 8) | (uint64_t)(g_started + 1))) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        g_started++;
    }
    if (threads > g_started + 1) threads = g_started + 1;
    g_fn = fn;
    g_context = context;
    atomic_store(&g_job_threads, threads);
    for (int w = 0; w < threads; w++)
        atomic_store(&g_ranges[w].state, range_pack((uint32_t)((long)w * tasks / threads), (uint32_t)((long)(w + 1) * tasks / threads)));
    pthread_mutex_lock(&g_wake_lock);
    atomic_fetch_add(&g_generation, 1);
    atomic_store(&g_open, 1);
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_wake_lock);
    run_tasks(0);
    atomic_store(&g_open, 0);
    while (atomic_load(&g_active) > 0) CK_PAUSE();
    pthread_mutex_unlock(&g_job_lock);
}

/* ---- Memory ------------------------------------------------------------------------------------ */

void *ck_buffer_alloc(size_t bytes) {
    if (bytes == 0) bytes = 64;
#if defined(__unix__) || defined(__APPLE__)
    if (bytes >= CK_MAP_MIN) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    void *p = NULL;
    return posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) == 0 ? p : NULL;
}

void ck_buffer_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes == 0) bytes = 64;
#if defined(__unix__) || defined(__APPLE__)
    if (bytes >= CK_MAP_MIN) {
        munmap(p, bytes);
        return;
    }
#endif
    free(p);
}

void ck_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
