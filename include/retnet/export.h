/* retnet — symbol visibility of the public API. C and C++; included by every public header.
 *
 * libretnet is compiled with hidden visibility (-fvisibility=hidden -fvisibility-inlines-hidden), so
 * the shared library exports only what the public headers mark RETNET_API: the classes and functions
 * of namespace retnet declared in include/retnet, and the C API (retnet_*). None of its internal
 * classes is exported, nor any code it instantiates from its private dependencies (nlohmann_json,
 * fmt, spdlog), which therefore cannot collide with the application's own versions of them.
 * RETNET_LOCAL keeps a member of an exported class inside the library (the Impl types that the
 * public headers only declare, and the private constructors that take them).
 *
 * Consumers define nothing: the macros read the same when the library is built, and when it is used
 * shared or static (a static libretnet linked into a shared object exports the retnet API from it). */
#ifndef RETNET_EXPORT_H
#define RETNET_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define RETNET_API __attribute__((visibility("default")))
#define RETNET_LOCAL __attribute__((visibility("hidden")))
#else
#define RETNET_API
#define RETNET_LOCAL
#endif

#endif /* RETNET_EXPORT_H */
