# Writes tests/data/docs-eval.jsonl: the documents-tier evaluation set (questions in citizens' words,
# gold = document number + article). Kept so the set can be regenerated and reviewed in one place.
import json
from pathlib import Path

PL = "02/2020/UBTVQH14"
ND75 = "75/2021/NĐ-CP"
ND131 = "131/2021/NĐ-CP"
QD62 = "62/2011/QĐ-TTg"
TNXP = "08/2012/TTLT-BLĐTBXH-BNV-BTC"
ND20 = "20/2021/NĐ-CP"
NCT = "39/2009/QH12"
ND06 = "06/2011/NĐ-CP"
NKT = "51/2010/QH12"
ND28_12 = "28/2012/NĐ-CP"
LVL = "38/2013/QH13"
ND28 = "28/2015/NĐ-CP"
TT28 = "28/2015/TT-BLĐTBXH"
BLLD = "45/2019/QH14"
ND145 = "145/2020/NĐ-CP"


def g(*pairs):
    out=[]
    for doc, arts in pairs:
        for a in str(arts).split(","):
            a=a.strip()
            out.append({"document": doc, "article": a if a.startswith("Phụ lục") else f"Điều {a}"})
    return out
Q = [
 # --- people with merit
 ("ncc", "bố tôi là thương binh 4/4 tỷ lệ 25% thì được những quyền lợi gì từ nhà nước", g((PL,24))),
 ("ncc", "ong noi em bi thuong trong chien tranh gio muon lam ho so cong nhan thuong binh thi can dieu kien gi", g((PL,23),(ND131,34))),
 ("ncc", "Mẹ tôi được phong Bà mẹ Việt Nam anh hùng thì được hưởng những gì hàng tháng?", g((PL,18))),
 ("ncc", "vo liet si di lay chong khac co con duoc huong tro cap nua khong", g((PL,16),(ND131,27))),
 ("ncc", "Con của người bị nhiễm chất độc da cam bị dị tật bẩm sinh thì có được trợ cấp không ạ", g((PL,"30,31"),(ND131,57))),
 ("ncc", "người bị địch bắt tù đày được hưởng chế độ gì", g((PL,33))),
 ("ncc", "benh binh mat suc lao dong 61% thi duoc huong nhung che do gi", g((PL,27))),
 ("ncc", "Bố em là bệnh binh đã mất, mẹ em bây giờ có được hưởng tiền tuất hàng tháng không", g((PL,28))),
 ("ncc", "nguoi co cong khi mat thi gia dinh duoc ho tro mai tang bao nhieu", g((ND131,121),(ND75,13))),
 ("ncc", "Trường hợp nào thì bị tạm dừng không cho hưởng chế độ người có công nữa?", g((PL,54),(ND131,118))),
 ("ncc", "người như thế nào thì được công nhận là liệt sĩ, chết do tai nạn khi làm nhiệm vụ có được không", g((PL,14),(ND131,14))),
 ("ncc", "Tiền mọi người góp ủng hộ đền ơn đáp nghĩa ở phường được chi cho những việc gì?", g((PL,47),(ND131,"173,181"))),
 ("ncc", "thương binh nặng trên 81% có được phụ cấp gì thêm không", g((ND75,"Phụ lục I"),(PL,24))),
 ("ncc", "muc chuan tro cap nguoi co cong hien nay la bao nhieu", g((ND75,3))),
 ("ncc", "Thương binh bị 85% thì một tháng được lĩnh bao nhiêu tiền?", g((ND75,"Phụ lục II"))),
 ("ncc", "thuong binh loai b 45% duoc bao nhieu tien 1 thang", g((ND75,"Phụ lục III"))),
 ("ncc", "bố tôi bị nhiễm chất độc da cam tỷ lệ 70% thì mỗi tháng được bao nhiêu", g((ND75,"Phụ lục I"))),
 ("ncc", "gia đình có 2 liệt sĩ thì mỗi tháng được trợ cấp tiền tuất bao nhiêu", g((ND75,"Phụ lục I"))),
 ("ncc", "nguoi bi thuong ty le 15% thi co duoc tro cap mot lan khong, bao nhieu", g((ND75,"Phụ lục VI"))),
 ("ncc", "tiền thờ cúng liệt sĩ mỗi năm được bao nhiêu", g((ND75,13))),
 ("ncc", "di tham mo liet si o tinh khac thi nha nuoc ho tro tien xe the nao, may nguoi duoc di", g((ND75,9))),
 ("ncc", "Nhà tôi muốn đưa hài cốt chú là liệt sĩ về quê thì được hỗ trợ tiền bốc mộ bao nhiêu?", g((ND75,10))),
 ("ncc", "con thuong binh di hoc dai hoc duoc tro cap bao nhieu 1 nam", g((ND75,"8,Phụ lục I"))),
 ("ncc", "Điều dưỡng tại nhà cho người có công thì được nhận bao nhiêu tiền một lần?", g((ND75,6))),
 ("ncc", "thuong binh cut chan muon lam chan gia thi duoc ho tro tien khong", g((ND75,"7,Phụ lục V"))),
 ("ncc", "ngày lễ tết thương binh nặng được ăn thêm bao nhiêu tiền", g((ND75,13))),
 ("ncc", "Xây lại mộ liệt sĩ ở quê thì nhà nước hỗ trợ tối đa bao nhiêu?", g((ND75,11))),
 ("ncc", "Chào anh chị, bố em là thương binh hạng 2/4, mấy năm nay vết thương ở đầu hay tái phát, đau nhức, đi khám bác sĩ bảo còn mảnh đạn trong người. Nhà em muốn đề nghị cho bố đi giám định lại để nâng tỷ lệ thì có được không và điều kiện thế nào ạ?", g((ND131,"40,41,42"))),
 ("ncc", "ai tra tien kham giam dinh lai thuong tat", g((ND131,163))),
 ("ncc", "Bằng Tổ quốc ghi công nhà tôi bị mối ăn mất chữ, xin cấp lại thì làm thế nào?", g((ND131,24))),
 ("ncc", "chuyen ho khau vao tinh khac thi ho so nguoi co cong chuyen the nao", g((ND131,131))),
 ("ncc", "mất giấy chứng nhận thương binh thì xin cấp lại ở đâu", g((ND131,115))),
 ("ncc", "thương binh mất thì vợ làm hồ sơ hưởng tuất cần những giấy tờ gì", g((ND131,124))),
 ("ncc", "khi nguoi co cong qua doi thi nguoi lo mai tang can nop giay to gi de nhan tien", g((ND131,122))),
 ("ncc", "Mỗi năm người có công được đi điều dưỡng mấy lần, đi tập trung hay ở nhà?", g((ND131,"84,85"))),
 ("ncc", "muon di tham mo liet si can chuan bi giay to gi, nop o dau", g((ND131,158))),
 ("ncc", "Anh tôi bị thương hồi ở quân ngũ, về nhà lâu rồi, giờ xin được xét là thương binh thì chuẩn bị giấy gì?", g((ND131,"39,77"))),
 ("ncc", "người có công được hỗ trợ sửa nhà bao nhiêu tiền, ai được ưu tiên", g((ND131,"99,102"))),
 ("ncc", "bo toi la thuong binh, nay xin cap so do cho manh dat nha thi co duoc bot tien phai nop khong", g((ND131,"103,104"))),
 ("ncc", "Tôi năm nay 65 tuổi, hồi 1979 tôi đi bộ đội đánh nhau ở biên giới phía Bắc được hơn 3 năm thì xuất ngũ về địa phương làm ruộng, chưa được hưởng chế độ gì. Nghe nói có chính sách cho người tham gia chiến tranh bảo vệ tổ quốc, cho hỏi tôi có thuộc diện được hưởng không?", g((QD62,2))),
 ("ncc", "bo doi xuat ngu sau khi di K campuchia thi huong tro cap mot lan tinh the nao", g((QD62,5))),
 ("ncc", "ho so xin tro cap cho nguoi di chien truong K ve gom nhung gi", g((QD62,7))),
 ("ncc", "thanh nien xung phong thoi chong my duoc tro cap mot lan bao nhieu tien", g((TNXP,2))),
 ("ncc", "Thanh niên xung phong già yếu sống một mình không nơi nương tựa có được trợ cấp hàng tháng không?", g((TNXP,3))),
 ("ncc", "con liệt sĩ đã trên 18 tuổi còn đi học thì có được hưởng tiếp trợ cấp không", g((PL,16))),
 ("ncc", "nguoi phuc vu thuong binh nang o nha duoc tra bao nhieu tien", g((ND75,"Phụ lục I"))),
 ("ncc", "lão thành cách mạng hoạt động trước năm 1945 được hưởng trợ cấp bao nhiêu một tháng", g((ND75,"Phụ lục I"))),
 ("ncc", "Nếu thương binh đồng thời là bệnh binh thì có được hưởng cả hai chế độ không?", g((ND131,43))),
 ("ncc", "Phụ cấp đặc biệt cho thương binh bị cụt hai chân thì làm hồ sơ ở đâu", g((ND131,117))),
 ("ncc", "bao lau thi duoc nhan tro cap sau khi co quyet dinh cong nhan thuong binh, tinh tu thang nao", g((ND131,45))),
 ("ncc", "bo toi la thuong binh 61% da mat nam ngoai, me toi nam nay 58 tuoi o nha lam ruong khong co luong huu. xin hoi me toi co duoc huong tien tuat hang thang khong va muc bao nhieu", g((PL,25),(ND75,"Phụ lục I"))),
 ("ncc", "Chú tôi hy sinh năm 1972 ở chiến trường Quảng Trị, đến nay gia đình vẫn chưa tìm được mộ. Nghe nói bây giờ có giám định ADN để tìm hài cốt, gia đình tôi có phải mất tiền lấy mẫu không?", g((ND75,12),(ND131,"146,147"))),
 ("ncc", "liet si chua co bang to quoc ghi cong thi gia dinh lam the nao de duoc cap", g((ND131,"21,22"))),
 ("ncc", "Ông nội tôi tham gia hoạt động kháng chiến, có huân chương kháng chiến hạng ba, ông đã mất năm 2010 nhưng chưa được nhận trợ cấp một lần. Bây giờ con cháu có được làm hồ sơ để nhận thay không?", g((ND131,"65,66"),(PL,"36,37"))),
 ("ncc", "nha nuoc co cap xe lan, nang cho thuong binh khong, bao lau cap mot lan", g((ND131,"88,89"),(ND75,"7,Phụ lục V"))),
 ("ncc", "ông bà được tặng kỷ niệm chương tổ quốc ghi công trước cách mạng tháng 8 thì hưởng trợ cấp hằng tháng bao nhiêu", g((ND75,"Phụ lục I"))),
 # --- social assistance
 ("btxh", "Bà ngoại tôi 82 tuổi, không có lương hưu, sống với con cháu thì có được nhận tiền trợ cấp hàng tháng không?", g((ND20,5),(NCT,17))),
 ("btxh", "chau toi bo me deu mat het, nam nay 6 tuoi, xa co cho tien nuoi chau moi thang khong", g((ND20,"5,6"))),
 ("btxh", "Hồ sơ xin trợ cấp xã hội hàng tháng cho người khuyết tật nặng gồm những gì?", g((ND20,7))),
 ("btxh", "lam ho so tro cap bao tro xa hoi thi nop cho ai, bao lau co ket qua", g((ND20,8))),
 ("btxh", "Tiền làm gốc để tính trợ cấp cho người già, trẻ mồ côi hiện nay là mấy trăm nghìn?", g((ND20,4))),
 ("btxh", "nguoi dang huong tro cap xa hoi khi chet thi gia dinh duoc ho tro mai tang bao nhieu", g((ND20,11))),
 ("btxh", "Nhà tôi ở vùng lũ, đợt bão vừa rồi nước cuốn sập hoàn toàn căn nhà, cả nhà phải ở nhờ nhà hàng xóm. Tôi thuộc hộ cận nghèo. Xin hỏi nhà nước có hỗ trợ tiền làm lại nhà không, được bao nhiêu?", g((ND20,15))),
 ("btxh", "Mất mùa đói kém thì xã có phát gạo cứu đói không, mỗi người được mấy ký?", g((ND20,12))),
 ("btxh", "bi tai nan giao thong nang phai nam vien lau ngay co duoc ho tro chi phi khong", g((ND20,13))),
 ("btxh", "Người nhà chết do lũ quét thì được hỗ trợ mai táng bao nhiêu?", g((ND20,14))),
 ("btxh", "nhan nuoi mot chau mo coi duoi 4 tuoi thi gia dinh toi duoc ho tro bao nhieu tien moi thang", g((ND20,20))),
 ("btxh", "Đối tượng nào thì được đưa vào trung tâm bảo trợ xã hội nuôi dưỡng?", g((ND20,24))),
 ("btxh", "me toi gia yeu khong ai trong, muon gui vao trai duong nha nuoc thi lam giay to gi", g((ND20,"27,28"))),
 ("btxh", "người hưởng trợ cấp xã hội có được cấp thẻ bảo hiểm y tế miễn phí không", g((ND20,9))),
 ("btxh", "Bao nhiêu tuổi thì được coi là người cao tuổi?", g((NCT,2))),
 ("btxh", "nguoi gia di xe khach, di tau co duoc giam gia ve khong", g((NCT,16),(ND06,5))),
 ("btxh", "Cụ nhà tôi tròn 100 tuổi thì được nhà nước chúc thọ, tặng quà gì?", g((NCT,21),(ND06,7))),
 ("btxh", "ong ba gia khong con cai, ai lo mai tang khi mat", g((NCT,22))),
 ("btxh", "Con cái có bắt buộc phải nuôi dưỡng bố mẹ già không, bỏ mặc thì sao", g((NCT,10))),
 ("btxh", "con toi bi tat nguyen, ai se danh gia con toi nang hay nhe, co nhung ai ngoi xet", g((NKT,"15,16"))),
 ("btxh", "Bị tật thì nhà nước phân ra nặng nhẹ thế nào, có mấy loại?", g((NKT,3),(ND28_12,3))),
 ("btxh", "xin giay xac nhan khuyet tat cho con thi nop don o dau, may ngay co", g((NKT,18))),
 ("btxh", "Giấy xác nhận khuyết tật bị mất thì có xin lại được không, ghi những nội dung gì", g((NKT,19))),
 ("btxh", "con toi gio da do hon truoc, muon danh gia lai muc do khuyet tat thi lam the nao", g((NKT,20))),
 ("btxh", "Người khuyết tật đi xe buýt có được miễn vé không?", g((ND28_12,12),(NKT,"41,42"))),
 ("btxh", "xuong toi tuyen nhieu anh em bi tat vao lam, nha nuoc co giam thue hay cho vay gi khong", g((NKT,"34,35"),(ND28_12,"9,10"))),
 ("btxh", "Người khuyết tật có được học nghề miễn phí không?", g((NKT,32))),
 ("btxh", "tre em khuyet tat di hoc co duoc ho tro gi", g((NKT,27))),
 ("btxh", "Chị tôi một mình nuôi hai đứa con nhỏ, chồng bỏ đi từ lâu, nhà thuộc hộ nghèo, thu nhập bấp bênh. Cho hỏi chị tôi có được xã trợ cấp hàng tháng không?", g((ND20,5))),
 ("btxh", "nha co nguoi khuyet tat dac biet nang, nguoi cham soc co duoc ho tro tien hang thang khong", g((ND20,"6,20"),(NKT,44))),
 # --- unemployment insurance
 ("tctn", "Tôi nghỉ việc được 2 tháng rồi, giờ mới đi nộp hồ sơ thất nghiệp có kịp không?", g((LVL,"46,49"),(ND28,17))),
 ("tctn", "dong bhtn bao lau thi moi duoc huong tro cap that nghiep", g((LVL,49))),
 ("tctn", "Tiền trợ cấp thất nghiệp được tính bằng bao nhiêu phần trăm lương?", g((LVL,50),(TT28,8))),
 ("tctn", "toi dong bao hiem that nghiep 5 nam thi duoc huong may thang", g((LVL,50),(TT28,8))),
 ("tctn", "Tự ý bỏ việc không báo trước thì có được hưởng trợ cấp thất nghiệp không", g((LVL,49))),
 ("tctn", "dang huong that nghiep thi hang thang phai len trung tam bao tin tim viec a", g((LVL,52),(TT28,10))),
 ("tctn", "Mất việc rồi, đi xin tiền thất nghiệp thì phải mang theo mấy thứ giấy?", g((ND28,16))),
 ("tctn", "khong tu di nop ho so that nghiep duoc thi nho nguoi khac nop ho co duoc khong", g((ND28,17))),
 ("tctn", "Nộp hồ sơ thất nghiệp xong bao nhiêu ngày thì có quyết định?", g((ND28,18),(LVL,46))),
 ("tctn", "dang huong tro cap that nghiep ma tim duoc viec moi thi sao", g((LVL,53),(ND28,"19,21"))),
 ("tctn", "Loại hợp đồng nào thì bắt buộc phải đóng bảo hiểm thất nghiệp?", g((LVL,43))),
 ("tctn", "Đang nhận thất nghiệp thì có được cấp thẻ bảo hiểm y tế không?", g((LVL,51),(ND28,23))),
 ("tctn", "nguoi that nghiep muon di hoc nghe thi duoc ho tro bao nhieu tien", g((LVL,"55,56"),(ND28,"24,25"),(TT28,"11,12"))),
 ("tctn", "Mấy năm trước tôi đóng ở công ty cũ mà chưa lấy tiền thất nghiệp, giờ nghỉ ở công ty mới thì có tính gộp lại không?", g((LVL,45),(TT28,9))),
 ("tctn", "Mỗi tháng công ty trích đóng bảo hiểm thất nghiệp bao nhiêu phần trăm lương", g((LVL,57),(ND28,"5,6"))),
 ("tctn", "Em làm công nhân may được hơn 3 năm, đóng bảo hiểm đầy đủ, tháng trước công ty cắt giảm nên cho em nghỉ. Em muốn hỏi là em được hưởng trợ cấp thất nghiệp trong bao lâu và từ ngày nào thì bắt đầu được tính tiền ạ?", g((LVL,50),(TT28,8))),
 ("tctn", "toi khong muon nhan tro cap that nghiep luc nay de bao luu thi lam the nao", g((TT28,"7,9"))),
 ("tctn", "Nếu không đi khai báo tìm việc hàng tháng thì có bị cắt trợ cấp không?", g((LVL,"52,53"),(ND28,"19,21"))),
 ("tctn", "len trung tam nho tim cho cong viec thi co mat tien khong", g((LVL,"38,54"),(ND28,"14,15"))),
 ("tctn", "muon muon tien nha nuoc de mo xuong may nho tao cong an viec lam thi phai the nao", g((LVL,"12,13"))),
 ("tctn", "minh bi cong ty cho nghi viec thang truoc, dong bao hiem duoc 14 thang, nghe noi phai nop ho so trong vong 3 thang moi duoc huong that nghiep, vay nop o dau va can mang theo gi", g((LVL,46),(ND28,"16,17"))),
 ("tctn", "dang nhan tro cap that nghiep thi di nuoc ngoai dinh cu co bi cham dut khong", g((LVL,53),(ND28,21))),
 # --- labour code
 ("lao-dong", "Thử việc tối đa được bao nhiêu ngày?", g((BLLD,25))),
 ("lao-dong", "luong thu viec duoc bao nhieu phan tram luong chinh", g((BLLD,26))),
 ("lao-dong", "Tôi muốn nghỉ việc thì phải báo trước cho công ty bao nhiêu ngày?", g((BLLD,35))),
 ("lao-dong", "cong ty duoi viec toi ma khong bao truoc thi co dung luat khong", g((BLLD,"36,39,41"))),
 ("lao-dong", "Làm việc 6 năm nghỉ việc thì công ty có phải trả trợ cấp thôi việc không, tính thế nào?", g((BLLD,46),(ND145,8))),
 ("lao-dong", "cong ty giam bien che cho nghi thi nguoi lao dong duoc boi thuong gi", g((BLLD,"42,47"),(ND145,8))),
 ("lao-dong", "Làm thêm giờ ngày chủ nhật thì được trả lương gấp mấy lần?", g((BLLD,98),(ND145,55))),
 ("lao-dong", "mot nam duoc lam them toi da bao nhieu gio", g((BLLD,107),(ND145,"60,61"))),
 ("lao-dong", "Mỗi năm người lao động được nghỉ phép bao nhiêu ngày có lương?", g((BLLD,113))),
 ("lao-dong", "tet am lich duoc nghi may ngay", g((BLLD,112))),
 ("lao-dong", "Lao động nữ sinh con được nghỉ mấy tháng?", g((BLLD,139))),
 ("lao-dong", "dang mang bau ma cong ty doi cho nghi viec thi co duoc khong", g((BLLD,"37,137"))),
 ("lao-dong", "Con kết hôn thì bố mẹ được nghỉ mấy ngày có lương?", g((BLLD,115))),
 ("lao-dong", "lam viec lau nam thi ngay phep co duoc tang them khong", g((BLLD,114))),
 ("lao-dong", "Một ngày làm việc bình thường tối đa mấy tiếng?", g((BLLD,105))),
 ("lao-dong", "cong ty tra luong cham hon 1 thang thi co phai tra them tien lai khong", g((BLLD,97))),
 ("lao-dong", "Công ty có được trừ lương để bù tiền làm hỏng máy không, trừ tối đa bao nhiêu?", g((BLLD,"102,129"))),
 ("lao-dong", "tuoi nghi huu cua nam nam 2025 la bao nhieu", g((BLLD,169))),
 ("lao-dong", "Hợp đồng lao động có mấy loại? Hết hạn hợp đồng mà vẫn làm tiếp thì sao?", g((BLLD,20))),
 ("lao-dong", "lam viec ca dem thi luong tinh them bao nhieu", g((BLLD,98),(ND145,"56,57"))),
 ("lao-dong", "Đi nghĩa vụ quân sự thì hợp đồng lao động với công ty xử lý thế nào?", g((BLLD,"30,31"))),
 ("lao-dong", "bi sa thai trong truong hop nao", g((BLLD,125))),
 ("lao-dong", "Thời hạn công ty được xử lý kỷ luật là bao lâu kể từ khi vi phạm?", g((BLLD,123))),
 ("lao-dong", "Thuê trẻ em 14 tuổi làm việc có vi phạm pháp luật không?", g((BLLD,"143,145"))),
 ("lao-dong", "nha toi thue chi o lai nau an don dep, co can lam giay to ky ket gi voi chi ay khong", g((BLLD,162),(ND145,89))),
 ("lao-dong", "Bị công ty nợ lương, muốn khiếu nại thì thời hiệu là bao lâu?", g((BLLD,190))),
 ("lao-dong", "minh cai nhau voi chu ve tien luong thi di dau nho nguoi dung ra giai quyet truoc khi kien", g((BLLD,"187,188"))),
 ("lao-dong", "Xưởng tôi có 12 công nhân thì có cần đem bản quy định của xưởng đi đăng ký ở cơ quan nhà nước không?", g((BLLD,"118,119"))),
 ("lao-dong", "Mức lương tối thiểu vùng áp dụng cho ai, được quy định thế nào?", g((BLLD,91))),
 ("lao-dong", "nghi giua ca duoc bao nhieu phut", g((BLLD,109),(ND145,64))),
 ("lao-dong", "Người lao động cao tuổi đã có lương hưu đi làm tiếp thì có được ký hợp đồng không?", g((BLLD,"148,149"))),
 ("lao-dong", "Tôi làm công nhân ở khu công nghiệp, ký hợp đồng 1 năm, làm được 8 tháng thì mẹ ở quê ốm nặng không ai chăm, tôi muốn xin nghỉ luôn. Tôi có cần báo trước cho công ty không, báo trước mấy ngày thì không bị coi là trái luật?", g((BLLD,35))),
 ("lao-dong", "Công ty tôi hay bắt làm thêm đến 9-10 giờ tối, tháng nào cũng hơn 60 tiếng, không làm thì bị trừ thưởng. Như vậy có đúng không, luật cho làm thêm tối đa bao nhiêu giờ một tháng?", g((BLLD,107),(ND145,"59,60"))),
 ("lao-dong", "chao ban, minh lam o cong ty duoc 2 nam, hop dong khong xac dinh thoi han, gio cong ty chuyen minh sang lam cong viec khac khong dung hop dong ma khong hoi y kien, nhu vay co dung khong", g((BLLD,29))),
 ("lao-dong", "quay roi tinh duc o noi lam viec thi bao cho ai, cong ty co trach nhiem gi", g((ND145,"84,85,86"))),
 ("lao-dong", "cong ty co nhieu lao dong nu thi phai co phong vat sua khong", g((ND145,"76,80"),(BLLD,136))),
 ("lao-dong", "Hợp đồng miệng có giá trị không hay bắt buộc phải làm giấy tờ?", g((BLLD,14))),
 ("lao-dong", "cong ty bat dong tien coc khi nhan vao lam co dung khong", g((BLLD,17))),
 ("lao-dong", "Tôi bị công ty cho nghỉ ngang mà không có lý do, tôi kiện thì công ty phải bồi thường những gì?", g((BLLD,"39,41"))),
 ("lao-dong", "cong ty minh muon thue mot anh ky su han quoc sang lam thi anh ay phai dap ung nhung gi", g((BLLD,"151,152"))),
 ("lao-dong", "chi toi lam giup viec nha, chu nha giu luon giay to tuy than va khong cho ve que, nhu vay co vi pham khong", g((BLLD,"165,163"))),
 ("lao-dong", "Ngừng việc do mất điện thì công ty có phải trả lương không?", g((BLLD,99))),
]
with open(Path(__file__).resolve().parent.parent / "tests/data/docs-eval.jsonl", "w", encoding="utf-8") as f:
    for i,(area,q,gold) in enumerate(Q,1):
        f.write(json.dumps({"id": f"doc-{i:03d}", "q": q, "area": area, "gold": gold}, ensure_ascii=False)+"\n")
print(len(Q))
