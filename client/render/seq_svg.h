// The picture `tcbscope compare --svg` writes: for each pair (its latest
// sample), both directions' sequence space, each on one axis — the sender's
// snd_una..snd_nxt..write_seq above the receiver's copied_seq..rcv_nxt..
// rcv_wup+rcv_wnd — with the in-flight, unsent, unread and window regions
// drawn to scale and the pair's findings written beside.
//
// Every region is a <rect> carrying data-region and data-bytes, so its width
// can be checked against the numbers. Pure: returns the document.
#ifndef TCBSCOPE_CLIENT_RENDER_SEQ_SVG_H_
#define TCBSCOPE_CLIENT_RENDER_SEQ_SVG_H_

#include <string>

#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

std::string SequenceSvg(const v1::CompareResult& result);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_SEQ_SVG_H_
