"""Train the diacritic-restoration model shipped in ``data/diacritics.json.gz``.

    python scripts/train_diacritics.py [--corpus /work/shared/corpus/phap-dien] [--out data/diacritics.json.gz]

Training text: the legal corpus (pháp điển topic pages: Markdown, front matter, tables and URLs stripped,
split into sentences, lower-cased, NFC), plus a small hand-written set of conversational sentences
(``CONVERSATIONAL``) so that the question words of citizens (bao nhiêu, thế nào, ở đâu, ạ, vậy...), which
legal text hardly uses, are known. The knowledge base is *not* included here: it is added at index-build
time with ``DiacriticRestorer.update(knowledge_texts(...))``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from indexer.diacritics import DiacriticRestorer, clean_markdown  # noqa: E402

DEFAULT_CORPUS = Path("/work/shared/corpus/phap-dien")
DEFAULT_OUT = ROOT / "data" / "diacritics.json.gz"

# Conversational Vietnamese: how citizens ask. Written for this model; not taken from any evaluation set.
CONVERSATIONAL = """
Cho tôi hỏi thủ tục này làm ở đâu ạ?
Cho em hỏi chút, em cần chuẩn bị những giấy tờ gì?
Cho mình hỏi hồ sơ nộp ở đâu vậy?
Tôi muốn hỏi về chế độ này thì hỏi ai?
Xin hỏi thời gian giải quyết mất bao lâu?
Mất bao nhiêu ngày thì có kết quả?
Khoảng bao lâu thì nhận được tiền?
Một tháng được nhận bao nhiêu tiền vậy?
Mỗi tháng được bao nhiêu?
Được hưởng bao nhiêu phần trăm?
Tối đa được mấy tháng?
Phải đóng bảo hiểm bao nhiêu năm mới được hưởng?
Có mất phí không hay miễn phí?
Có được không ạ?
Như vậy có đúng không?
Trường hợp của tôi có được hưởng không?
Tôi có thuộc diện được hỗ trợ không?
Làm sao để biết mình có đủ điều kiện không?
Thủ tục như thế nào?
Làm thế nào để đăng ký?
Phải làm gì bây giờ?
Giờ tôi phải làm sao?
Tôi nên làm gì tiếp theo?
Nộp hồ sơ ở đâu, nộp online được không?
Có thể nộp qua mạng hay phải lên tận nơi?
Có cần mang theo căn cước công dân không?
Có cần công chứng giấy tờ không?
Có phải đi lại nhiều lần không?
Ai được nhận tiền khi người đó mất?
Tôi ở tỉnh khác thì nộp ở đâu?
Tôi đang ở quê, không lên thành phố được thì sao?
Nếu quá hạn thì có bị mất quyền lợi không?
Nếu không nộp đúng hạn thì sao?
Hết hạn rồi có gia hạn được không?
Bị mất giấy thì xin cấp lại như thế nào?
Giấy tờ bị hỏng, bị rách thì làm lại ở đâu?
Số điện thoại tổng đài là bao nhiêu?
Tôi gọi điện mãi không ai nghe máy.
Em cảm ơn ạ.
Cảm ơn bạn nhiều nhé.
Vâng, tôi hiểu rồi.
Dạ cho em hỏi thêm một chút.
Tôi không biết chữ nhiều, nhờ cán bộ hướng dẫn giúp.
Bạn là ai vậy?
Bạn có thể giúp tôi được không?
Tôi mới nghỉ việc được hai tuần.
Tôi bị công ty cho nghỉ việc vì cắt giảm nhân sự.
Công ty tôi phá sản, tôi mất việc rồi.
Công ty chậm trả lương ba tháng nay.
Công ty không đóng bảo hiểm cho tôi thì phải làm sao?
Tôi làm ở công ty được năm năm.
Tôi đã đóng bảo hiểm thất nghiệp đủ mười hai tháng.
Tôi muốn làm hồ sơ hưởng trợ cấp thất nghiệp.
Hưởng trợ cấp thất nghiệp cần những gì?
Trợ cấp thất nghiệp được nhận trong mấy tháng?
Tiền trợ cấp thất nghiệp nhận ở đâu?
Đang nhận trợ cấp thất nghiệp mà có việc làm mới thì phải báo.
Hằng tháng phải đến trung tâm dịch vụ việc làm để thông báo tìm kiếm việc làm.
Tôi bị ốm nên không đi thông báo được.
Tôi muốn chuyển nơi hưởng sang tỉnh khác.
Tôi muốn đi học nghề miễn phí.
Học nghề được hỗ trợ bao nhiêu tiền một tháng?
Tôi muốn tìm việc làm gần nhà.
Trung tâm có giới thiệu việc làm cho người lớn tuổi không?
Sinh viên mới ra trường tìm việc ở đâu?
Tôi muốn đi làm việc ở nước ngoài.
Đi xuất khẩu lao động Nhật Bản, Hàn Quốc, Đài Loan cần điều kiện gì?
Công ty môi giới thu tiền rồi bỏ trốn.
Tôi sợ bị lừa đảo khi đi lao động nước ngoài.
Có được vay vốn ngân hàng chính sách để đi làm việc ở nước ngoài không?
Công ty tôi thuê người nước ngoài làm việc.
Xin giấy phép lao động cho chuyên gia nước ngoài.
Giấy phép lao động sắp hết hạn, muốn gia hạn.
Lương tối thiểu vùng năm nay tăng bao nhiêu?
Tôi làm công nhân ở khu công nghiệp, lương có thấp hơn lương tối thiểu không?
Công ty trả lương thấp hơn mức tối thiểu vùng có đúng không?
Tôi bị sa thải mà không được báo trước.
Tôi bị nợ lương, muốn khiếu nại công ty.
Tôi muốn kiện công ty ra tòa.
Hòa giải viên lao động ở đâu?
Nghỉ thai sản được mấy tháng?
Vợ tôi sinh con, chồng có được nghỉ không?
Làm thêm giờ được tính lương thế nào?
Tôi bị tai nạn lao động khi đang làm việc.
Ông tôi là thương binh, bà tôi là mẹ Việt Nam anh hùng.
Bố tôi là liệt sĩ, mẹ tôi già yếu không có lương hưu.
Chú tôi hy sinh trong chiến tranh, chưa tìm được mộ.
Gia đình muốn đi thăm viếng mộ liệt sĩ.
Nhà tôi có người có công với cách mạng.
Ông nội tôi tham gia kháng chiến, bị nhiễm chất độc hóa học.
Con của người bị nhiễm chất độc da cam bị dị tật.
Thân nhân liệt sĩ được hưởng trợ cấp tuất hằng tháng.
Vợ liệt sĩ đi lấy chồng khác có còn được hưởng không?
Thương binh được hưởng trợ cấp theo tỷ lệ thương tật.
Tôi muốn giám định lại thương tật.
Người có công mất thì gia đình được nhận tiền mai táng phí.
Được hỗ trợ làm nhà, sửa chữa nhà ở.
Bằng Tổ quốc ghi công bị thất lạc.
Được đi điều dưỡng, được cấp dụng cụ chỉnh hình.
Con thương binh đi học có được miễn giảm học phí không?
Bà tôi năm nay tám mươi tuổi, sống một mình.
Ông bà già cả không nơi nương tựa.
Người cao tuổi được hưởng trợ cấp xã hội hằng tháng.
Người già từ tám mươi tuổi trở lên được nhận tiền hằng tháng.
Cháu tôi mồ côi cả cha lẫn mẹ.
Trẻ em mồ côi được nhận trợ cấp nuôi dưỡng.
Tôi đang nuôi cháu ngoại, bố mẹ cháu đã mất.
Người đơn thân nghèo đang nuôi con nhỏ.
Mẹ đơn thân có được hỗ trợ gì không?
Con tôi bị khuyết tật nặng, không tự đi lại được.
Con tôi bị bại não từ nhỏ.
Anh tôi bị câm điếc bẩm sinh.
Em tôi bị thiểu năng trí tuệ.
Xin giấy xác nhận mức độ khuyết tật.
Hội đồng xác định mức độ khuyết tật ở xã.
Người khuyết tật đặc biệt nặng được trợ cấp hằng tháng.
Người chăm sóc người khuyết tật có được hỗ trợ không?
Nhà tôi thuộc hộ nghèo, được cấp thẻ bảo hiểm y tế miễn phí.
Làm sao để được xét hộ nghèo, hộ cận nghèo?
Gia đình tôi khó khăn, thu nhập thấp.
Nhà bị cháy, bị bão lũ cuốn trôi.
Người dân bị thiếu đói được hỗ trợ gạo.
Xin hỗ trợ khẩn cấp khi gặp thiên tai.
Đưa người già vào trung tâm bảo trợ xã hội.
Người lang thang xin ăn được đưa về cơ sở trợ giúp xã hội.
Trẻ em bị bạo lực, bị xâm hại thì gọi tổng đài 111.
Tôi thấy một bé bị bố dượng đánh.
Trẻ em dưới sáu tuổi được cấp thẻ bảo hiểm y tế.
Nhận chăm sóc thay thế trẻ em có hoàn cảnh đặc biệt.
Con tôi nghiện ma túy, gia đình muốn cho đi cai nghiện.
Cai nghiện tự nguyện tại gia đình, tại cộng đồng.
Người nghiện đi cai nghiện bắt buộc.
Chi phí cai nghiện có được hỗ trợ không?
Người bán dâm được hỗ trợ học nghề, tìm việc làm.
Tôi muốn rút bảo hiểm xã hội một lần.
Tôi muốn hỏi về lương hưu.
Thẻ bảo hiểm y tế hết hạn.
Tôi có thể tra cứu hồ sơ trên cổng dịch vụ công không?
Hồ sơ của tôi nộp lâu rồi mà chưa có kết quả.
Cán bộ hẹn mãi không trả kết quả.
Tôi muốn phản ánh, kiến nghị về thủ tục hành chính.
Bộ phận một cửa làm việc từ thứ hai đến thứ sáu.
Sáng thứ bảy có làm việc không?
Tôi ở xã, không biết lên đâu để nộp.
Ủy ban nhân dân xã, phường tiếp nhận hồ sơ.
Sở Lao động, Thương binh và Xã hội tỉnh.
Phòng Lao động, Thương binh và Xã hội huyện.
Sở Nội vụ, Sở Y tế sau khi sắp xếp bộ máy.
Mẫu đơn đề nghị tải ở đâu?
Điền tờ khai như thế nào cho đúng?
Có cần xác nhận của công an xã không?
Ghi rõ họ tên, ngày tháng năm sinh, số điện thoại.
Tôi năm nay ba mươi tuổi, làm công nhân may.
Chồng tôi đi làm xa, tôi ở nhà nuôi hai con nhỏ.
Nhà có bố mẹ già và một đứa con nhỏ.
Vậy thì tốt quá, cảm ơn nhé.
Ok, mình biết rồi.
Chào bạn, chào buổi sáng.
Tạm biệt, hẹn gặp lại.
Không rõ lắm, bạn nói lại được không?
Ý tôi là hỏi về mức hưởng chứ không phải hồ sơ.
Xin lỗi, tôi hỏi nhầm.
Còn trường hợp khác thì sao?
Nếu tôi không đủ điều kiện thì có cách nào khác không?
Thế còn người đang đi làm thì sao?
Cái này có áp dụng cho người dân tộc thiểu số không?
Ở vùng sâu vùng xa có được ưu tiên không?
Tôi nghe nói từ năm nay được tăng lên.
Mức cũ là bao nhiêu, mức mới là bao nhiêu?
Khi nào bắt đầu áp dụng?
Có hiệu lực từ ngày nào?
Căn cứ vào văn bản nào?
Ai ký quyết định?
Được nhận tiền mặt hay chuyển khoản?
Nhận qua bưu điện hay qua tài khoản ngân hàng?
Đổi số tài khoản nhận tiền.
Người nhà nhận thay có được không?
Viết giấy ủy quyền cho người nhà đi nộp hộ.
Hàng xóm nhà tôi có một cụ già sống neo đơn.
Ở xóm tôi có mấy gia đình rất khó khăn.
Thôn, xóm, làng, bản, ấp, tổ dân phố.
Trưởng thôn, trưởng ấp, tổ trưởng tổ dân phố xác nhận.
Công an xã, công an phường.
Chủ tịch xã ký xác nhận vào đơn.
Tôi bị đuổi việc vô cớ.
Giám đốc đuổi việc tôi mà không trả lương.
Tôi muốn kiện ra tòa án nhân dân huyện.
Tôi muốn tố cáo hành vi sai phạm.
Đơn khiếu nại gửi đến đâu?
Nhà dột nát, tường nứt, mái tôn thủng.
Mưa bão làm tốc mái nhà.
Lũ quét, sạt lở đất, hạn hán, mất mùa.
Nhà bị ngập nước, đồ đạc hư hỏng hết.
Cháy chợ, cháy nhà, mất hết tài sản.
Con tôi bị tự kỷ, bị tăng động, chậm nói.
Cháu bị hội chứng Down.
Ông bị tai biến, liệt nửa người.
Bà bị mù hai mắt, không nhìn thấy gì.
Bố tôi bị tâm thần, bị động kinh.
Mẹ tôi bị ung thư giai đoạn cuối.
Vợ tôi đang mang thai, sắp sinh.
Chồng tôi bị tai nạn giao thông.
Em trai tôi đi tù mới về.
Chị gái tôi đi làm ở thành phố.
Anh rể, chị dâu, em dâu, con rể, con dâu.
Ông ngoại, bà ngoại, ông nội, bà nội.
Cô, dì, chú, bác, cậu, mợ, thím.
Bố dượng, mẹ kế, con riêng, con nuôi.
Mấy giờ thì mở cửa?
Mấy ngày thì xong?
Mấy tháng nữa thì được nhận?
Bao giờ thì có tiền?
Khi nào thì có quyết định?
Tại sao hồ sơ của tôi bị trả lại?
Vì sao tôi không được duyệt?
Sao lâu thế?
Đâu là nơi nộp hồ sơ gần nhất?
Đến đâu để làm thủ tục?
Chỗ nào làm nhanh nhất?
Ai là người có thẩm quyền giải quyết?
Ai chịu trách nhiệm chi trả?
Hỏi ai bây giờ?
Có ai giúp tôi với.
Tôi cần gặp ai?
Hôm nay, hôm qua, ngày mai, tuần sau, tháng trước, năm ngoái, năm sau.
Sáng mai tôi lên nộp được không?
Chiều nay có làm việc không?
Tối thứ sáu tôi mới rảnh.
Tôi ở xa, đi lại khó khăn.
Tôi già rồi, mắt kém, không dùng điện thoại thông minh được.
Tôi không có tài khoản ngân hàng.
Tôi chưa có căn cước gắn chip.
Tôi chưa có tài khoản định danh điện tử.
Đăng nhập không được, quên mật khẩu.
Tiền đã chuyển vào tài khoản chưa?
Sao tháng này chưa thấy tiền về?
Tiền trợ cấp bị chậm mấy tháng rồi.
Số tiền nhận được ít hơn mọi năm.
Được cộng dồn hay không?
Có được truy lĩnh không?
Có bị trừ tiền không?
Có bị phạt không?
Có bị cắt chế độ không?
Có phải trả lại tiền không?
Có phải đóng thêm gì không?
Phải chờ đến bao giờ?
Có nhanh không?
Chắc chắn không?
Đúng rồi, cảm ơn.
Sai rồi, không phải vậy.
Tôi hỏi lại cho chắc nhé.
Nói rõ hơn giúp tôi được không?
Tôi chưa hiểu lắm.
Giải thích giúp tôi với.
Tôi là người dân tộc Thái, ở vùng cao.
Tôi là người dân tộc Mường, Tày, Nùng, Khmer, H'Mông, Ê Đê, Gia Rai.
Làm ruộng, làm rẫy, chăn nuôi, đánh cá, làm thuê, buôn bán nhỏ.
Tôi bán hàng ngoài chợ, thu nhập bấp bênh.
Tôi chạy xe ôm, làm phụ hồ.
Tôi làm giúp việc gia đình.
Tôi làm công nhân xây dựng, làm thời vụ.
Tôi là lao động tự do, không có hợp đồng.
Lao động phổ thông, lao động có tay nghề.
Kỹ sư, công nhân, nhân viên văn phòng, giáo viên, bác sĩ, y tá.
Tôi đã ký hợp đồng một năm.
Hết hợp đồng công ty không ký tiếp.
Công ty bắt tôi viết đơn xin nghỉ.
Tôi tự ý nghỉ việc thì có được hưởng không?
Tôi xin nghỉ việc đúng luật.
Công ty cho tôi nghỉ không lương.
Lương tháng của tôi là bảy triệu.
Mức lương đóng bảo hiểm là năm triệu đồng.
Tiền lương bình quân sáu tháng liền kề.
Được nhận sáu mươi phần trăm lương.
Một triệu, hai triệu, ba triệu, năm trăm nghìn đồng.
Một năm, hai năm, ba năm, mười năm, hai mươi năm.
Một tuần, hai tuần, một tháng, ba tháng, sáu tháng.
Thứ hai, thứ ba, thứ tư, thứ năm, thứ sáu, thứ bảy, chủ nhật.
Tháng giêng, tháng chạp, tết nguyên đán.
Buổi sáng, buổi trưa, buổi chiều, buổi tối.
Các tỉnh, thành phố: Hà Nội, Thành phố Hồ Chí Minh, Hải Phòng, Đà Nẵng, Cần Thơ, Huế.
Tỉnh Nghệ An, Hà Tĩnh, Thanh Hóa, Quảng Bình, Quảng Trị, Quảng Nam, Quảng Ngãi.
Tỉnh Bình Dương, Đồng Nai, Bình Phước, Tây Ninh, Long An, Tiền Giang, Bến Tre.
Tỉnh An Giang, Kiên Giang, Đồng Tháp, Vĩnh Long, Trà Vinh, Sóc Trăng, Bạc Liêu, Cà Mau, Hậu Giang.
Tỉnh Bắc Ninh, Bắc Giang, Hưng Yên, Hải Dương, Thái Bình, Nam Định, Ninh Bình, Hà Nam, Vĩnh Phúc, Phú Thọ.
Tỉnh Lào Cai, Yên Bái, Hà Giang, Tuyên Quang, Cao Bằng, Lạng Sơn, Bắc Kạn, Thái Nguyên.
Tỉnh Điện Biên, Lai Châu, Sơn La, Hòa Bình, Quảng Ninh.
Tỉnh Bình Định, Phú Yên, Khánh Hòa, Ninh Thuận, Bình Thuận.
Tỉnh Kon Tum, Gia Lai, Đắk Lắk, Đắk Nông, Lâm Đồng.
Tỉnh Bà Rịa - Vũng Tàu, Thừa Thiên Huế.
Nước ngoài: Nhật Bản, Hàn Quốc, Đài Loan, Trung Quốc, Malaysia, Singapore, Đức, Úc, Nga, Mỹ, Pháp, Anh.
Người nước ngoài quốc tịch Trung Quốc, Hàn Quốc, Nhật Bản.
Trường hợp của mẹ tôi thì sao ạ?
Con tôi năm nay lên lớp một.
Cháu đang học cấp hai, cấp ba.
Cháu học đại học, cao đẳng, trung cấp.
Nhà trường có miễn học phí cho cháu không?
Cháu bị bỏ rơi từ nhỏ, ở với bà.
Con tôi bị bắt nạt ở trường.
Bé bị bố mẹ bỏ mặc, không ai chăm sóc.
Tôi muốn nhận con nuôi.
Trẻ em bị lạm dụng, bị bóc lột sức lao động.
Đường dây nóng tiếp nhận thông tin.
Nghiện rượu, nghiện ma túy, sử dụng trái phép chất ma túy.
Con tôi hút ma túy đá, hay đập phá đồ đạc.
Gia đình không quản lý được nữa.
Xin đưa đi cai nghiện ở trung tâm.
Sau cai nghiện có được hỗ trợ tìm việc làm không?
Bị bệnh nghề nghiệp, bị bụi phổi.
Bị ngã từ giàn giáo, gãy chân.
Công ty không bồi thường tai nạn lao động.
Đi làm về thì bị tai nạn trên đường.
Nghỉ ốm được hưởng bao nhiêu ngày?
Khám sức khỏe định kỳ cho người lao động.
Tôi có câu hỏi khác.
Tôi muốn hỏi tiếp.
Còn gì nữa không?
Thế là xong à?
Vậy tôi cần mang những gì?
Vậy có mất tiền không?
Vậy ai là người ký?
Thế thì tôi hiểu rồi.
Ồ, vậy à.
Ừ, được rồi.
Dạ vâng ạ.
Dạ, em chào anh chị.
Chào cán bộ, cho tôi hỏi.
Bạn ơi, cho mình hỏi với.
Anh ơi, chị ơi, em ơi, cô ơi.
Ơi, ạ, à, nhé, nha, nhỉ, hả, hử.
Bố tôi vừa mất tháng trước.
Mẹ tôi mất năm ngoái, ông tôi mất đã lâu.
Người thân vừa qua đời thì gia đình làm thủ tục gì?
Tôi bị mất giấy tờ, mất ví, mất điện thoại.
"""


_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def corpus_sentences(corpus: Path) -> list[str]:
    """Sentences of every Markdown page under ``corpus``: cleaned, NFC, lower-case."""
    sentences: list[str] = []
    for path in sorted(corpus.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        text = clean_markdown(path.read_text(encoding="utf-8"))
        for sentence in _SENTENCE.split(text):
            sentence = unicodedata.normalize("NFC", sentence).strip().lower()
            if sentence:
                sentences.append(sentence)
    return sentences


def conversational_sentences() -> list[str]:
    return [unicodedata.normalize("NFC", s).strip().lower() for s in CONVERSATIONAL.splitlines() if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of Markdown pages")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model file (.json.gz)")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument(
        "--conversational-weight", type=int, default=3, help="times the conversational sentences are counted"
    )
    args = parser.parse_args(argv)

    if not args.corpus.is_dir():
        parser.error(f"corpus folder not found: {args.corpus}")
    t0 = time.perf_counter()
    sentences = corpus_sentences(args.corpus)
    extra = conversational_sentences() * max(args.conversational_weight, 0)
    model = DiacriticRestorer.train(sentences, order=args.order)
    model.update(extra)  # in-domain: also sets the domain unigram that favours citizens' words
    t1 = time.perf_counter()
    model.save(args.out)
    size = args.out.stat().st_size
    print(
        f"{len(sentences)} corpus sentences + {len(extra)} conversational; vocabulary {len(model.vocab)}; "
        f"{len(model)} {args.order}-grams; trained in {t1 - t0:.1f}s; wrote {args.out} ({size / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
