"""Chinese and Korean names: syllables, the family name at the front, pinyin syllables in Latin text.

A Chinese clerk writes 王秀英 (family name first, no spaces); a clerk abroad writes Xiuying Wang,
Wang Xiu Ying or Xiu-Ying Wang. Both sides must end with the same tokens, so a run of Han or
Hangul characters becomes its family name and its given name (joined syllables), and Latin text
made only of pinyin syllables is joined the same way by :mod:`.names`.
"""

from __future__ import annotations

from functools import lru_cache

from anyascii import anyascii

from ._tables import word_set

# The common single-character family names (simplified and traditional forms), from the usual
# frequency lists; and the compound ones that take two characters.
FAMILY_HAN = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "張劉陳楊黃趙吳孫馬鄭謝許韓馮鄧蕭葉蘇呂盧鍾譚陸賈韋鄒閻龍賀顧龔萬錢湯羅蔣傅"
)
FAMILY_HAN_2 = word_set("欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 歐陽 司馬 諸葛 東方 公孫")
FAMILY_HANGUL = frozenset(
    "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진나지엄변채원천방공현함"
    "염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용"
)

# Standard Mandarin syllables in pinyin without tones (ü written u or v), about 410.
PINYIN = word_set("""a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang cao ce cen
    ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui chun chuo ci cong
    cou cu cuan cui cun cuo da dai dan dang dao de den deng di dia dian diao die ding diu dong dou du duan dui dun
    duo e ei en eng er fa fan fang fei fen feng fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai
    guan guang gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo ji jia
    jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke kei ken keng kong kou ku kua kuai
    kuan kuang kui kun kuo la lai lan lang lao le lei leng li lia lian liang liao lie lin ling liu lo long lou lu
    luan lue lun luo lv lve ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu na nai nan
    nang nao ne nei nen neng ni nian niang niao nie nin ning niu nong nou nu nuan nue nun nuo nv nve o ou pa pai
    pan pang pao pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu
    quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo sa sai san sang sao se sen seng sha
    shai shan shang shao she shei shen sheng shi shou shu shua shuai shuan shuang shui shun shuo si song sou su
    suan sui sun suo ta tai tan tang tao te teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan
    wang wei wen weng wo wu xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi
    yin ying yo yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhen
    zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo""")


def is_han(ch: str) -> bool:
    """True for a CJK unified ideograph (basic block, extension A, compatibility block)."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2A6DF
    )


def is_hangul(ch: str) -> bool:
    """True for a precomposed Hangul syllable."""
    return 0xAC00 <= ord(ch) <= 0xD7A3


def _syllable(ch: str) -> str:
    return "".join(c for c in anyascii(ch).lower() if "a" <= c <= "z")


@lru_cache(maxsize=1 << 14)
def han_name_tokens(run: str) -> tuple[str, ...]:
    """Tokens of a run of Han or Hangul characters: (family, given) when the run has three or more
    characters and starts with a known family name, else the joined syllables as one token."""
    family_one = FAMILY_HANGUL if is_hangul(run[0]) else FAMILY_HAN
    syllables = [_syllable(ch) for ch in run]
    if len(run) >= 3 and run[:2] in FAMILY_HAN_2:
        return "".join(syllables[:2]), "".join(syllables[2:])
    if len(run) >= 3 and run[0] in family_one:
        return syllables[0], "".join(syllables[1:])
    return ("".join(syllables),)


def split_two(run: str) -> tuple[str, ...]:
    """A two-character run read as family name + one-syllable given name (used when the run is the
    whole name of a person)."""
    return tuple(_syllable(ch) for ch in run) if len(run) == 2 else han_name_tokens(run)


@lru_cache(maxsize=1)
def family_syllables() -> frozenset[str]:
    """The pinyin of the one-character family names in :data:`FAMILY_HAN` (wang, li, zhang...)."""
    return frozenset(s for s in (_syllable(ch) for ch in FAMILY_HAN) if s in PINYIN)


def join_pinyin(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Pinyin syllables written apart, as one given name: ("xiu", "ying") -> ("xiuying",). Of three
    syllables, a family name at either end stays apart: ("wang", "xiu", "ying") -> ("wang", "xiuying")."""
    if len(tokens) == 3:
        if tokens[0] in family_syllables():
            return tokens[0], tokens[1] + tokens[2]
        if tokens[2] in family_syllables():
            return tokens[0] + tokens[1], tokens[2]
    return ("".join(tokens),)


def all_pinyin(tokens: tuple[str, ...]) -> bool:
    """True if every token is a pinyin syllable (so "Xiu Ying" and "Xiu-Ying" are one given name)."""
    return bool(tokens) and all(t in PINYIN for t in tokens)
