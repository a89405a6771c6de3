// The chat page (web_ui.hpp): its embedded bytes and its Content-Security-Policy.
#include "web_ui.hpp"

#include "retnet_chat_page.hpp"  // generated: kChatPage, kChatPageScriptHash, kChatPageStyleHash

namespace retnet::serve {

std::string_view chat_page_html() {
  return {reinterpret_cast<const char*>(generated::kChatPage), generated::kChatPageSize};
}

const std::string& chat_page_csp() {
  // default-src 'none': no other script, style, image, font, frame or worker. connect-src 'self': the
  // API calls go to this server only. img-src data: only for the empty favicon (which stops the browser
  // asking for /favicon.ico). base-uri/form-action/frame-ancestors 'none': no <base> hijack, no form
  // posts elsewhere, no framing (clickjacking).
  static const std::string csp = std::string("default-src 'none'; script-src '") + generated::kChatPageScriptHash +
                                 "'; style-src '" + generated::kChatPageStyleHash +
                                 "'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                                 "frame-ancestors 'none'";
  return csp;
}

}  // namespace retnet::serve
