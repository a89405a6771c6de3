// The chat page of `retnet serve` at GET / (tools/serve/chat.html, embedded at build time by
// cmake/embed_chat_page.cmake) and the headers it is served with.
#pragma once
#include <string>
#include <string_view>

namespace retnet::serve {

// The page's bytes (HTML with its one inline script and style).
std::string_view chat_page_html();

// Its Content-Security-Policy: nothing may load or run but the page's own inline script and style
// (allowed by their SHA-256), and it may only fetch from its own origin. So even text that got into
// the DOM as HTML could run no script and reach no other host.
const std::string& chat_page_csp();

}  // namespace retnet::serve
