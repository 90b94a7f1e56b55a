// Weft's calls into Swift's runtime that are not public API (see
// include/SwiftRuntime.h and Sources/Weft/Support/SwiftRuntime.swift).
#include "SwiftRuntime.h"

extern size_t swift_retainCount(const void *object);

size_t weft_strong_retain_count(const void *object) { return swift_retainCount(object); }

/// In Swift (`SwiftRuntime.swift`): tells the observer its task was cancelled.
extern void weft_task_cancelled(void *context);

// The Swift runtime's cancellation records (Concurrency/TaskStatus.h): the
// handler is a Swift-convention function taking its context in the context
// register.
typedef void (*weft_cancellation_handler)(void *context __attribute__((swift_context)))
    __attribute__((swiftcall));
__attribute__((swiftcall)) void *swift_task_addCancellationHandler(weft_cancellation_handler handler, void *context);
__attribute__((swiftcall)) void swift_task_removeCancellationHandler(void *record);

__attribute__((swiftcall)) static void cancelled(void *context __attribute__((swift_context))) {
    weft_task_cancelled(context);
}

void *weft_add_cancellation_handler(void *context) {
    return swift_task_addCancellationHandler(cancelled, context);
}

void weft_remove_cancellation_handler(void *record) {
    swift_task_removeCancellationHandler(record);
}

__attribute__((swiftcall)) void *swift_task_getCurrent(void);

void *weft_current_task(void) { return swift_task_getCurrent(); }

__attribute__((swiftcall)) void swift_task_localValuePush(const void *key, void *value, const void *value_type);
__attribute__((swiftcall)) void swift_task_localValuePop(void);

void weft_task_local_value_push(const void *key, void *value, const void *value_type) {
    swift_task_localValuePush(key, value, value_type);
}

void weft_task_local_value_pop(void) { swift_task_localValuePop(); }

__attribute__((swiftcall)) const void *swift_task_localValueGet(const void *key);

const void *weft_task_local_value_get(const void *key) { return swift_task_localValueGet(key); }

const char weft_task_resumer_key_storage = 0;
