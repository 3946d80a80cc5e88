// Whether this build runs under AddressSanitizer: GCC says so with
// __SANITIZE_ADDRESS__, Clang (which the sanitizer build uses) only through
// __has_feature. Code that must behave differently there tests
// TCBSCOPE_ADDRESS_SANITIZER (1 or 0).
#ifndef TCBSCOPE_COMMON_SANITIZERS_H_
#define TCBSCOPE_COMMON_SANITIZERS_H_

#if defined(__SANITIZE_ADDRESS__)
#define TCBSCOPE_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TCBSCOPE_ADDRESS_SANITIZER 1
#endif
#endif
#ifndef TCBSCOPE_ADDRESS_SANITIZER
#define TCBSCOPE_ADDRESS_SANITIZER 0
#endif

#endif  // TCBSCOPE_COMMON_SANITIZERS_H_
