"""Clusters of spellings of one name across languages and romanisations (data for :mod:`.variants`).

One cluster per line: ``label: spelling spelling ...``. Spellings may be in any script; each goes
through the same transliteration and fold as a clerk's input, so one line covers many more forms
than it lists (Yuliya, Iuliia, Julija, Юлія all fold alike). The label is what comes out.

Sources: national romanisation rules (Ukrainian KMU 2010, Russian ICAO 9303, Bulgarian 2009, ELOT
743, pinyin, Wade-Giles and Cantonese, Revised Romanization of Korean), the equivalent forms of
Christian names across European languages, the Arabic given names and their Turkish, Persian,
Maghrebi, West African and Russian-ear forms, and the Akan day names. Diminutives are left out
(Sasha is not Aleksandr): a clerk writes the name the person gives, and a diminutive as the only
evidence would merge too much.
"""

from __future__ import annotations

from ._tables import word_set

SLAVIC_GREEK_ROMANCE = """
elena: Olena Elena Yelena Jelena Alena Alyona Alona Helena Helen Helene Eleni Олена Елена Алёна Альона Ελένη
aleksandr: Oleksandr Olexandr Oleksander Aleksandr Alexandr Alexander Aleksander Alexandre Alessandro Alejandro Alexandru Aliaksandr Aleksandar Alexandros Олександр Александр Аляксандр Александър
aleksandra: Oleksandra Aleksandra Alexandra Alessandra Alejandra Олександра Александра
aleksey: Oleksiy Oleksii Oleksij Aleksei Alexei Alexey Aleksey Aleksiej Aliaksei Олексій Алексей
sergey: Serhiy Serhii Serhij Sergiy Sergii Sergey Sergei Sergej Sergiusz Siarhei Sergiu Serge Sergio Сергій Сергей
nikolay: Mykola Mikola Nikolai Nikolay Nikolaj Nicolae Nicolai Mikolaj Nikola Nicola Nicolas Nikolaos Микола Николай Никола Νικόλαος
yulia: Yuliya Yulia Iuliia Iulia Julia Juliya Julija Yulija Ioulia Giulia Юлія Юлия
dmitriy: Dmytro Dmitry Dmitriy Dmitrii Dmitri Dimitri Dimitry Dymitr Dmitrij Dimitar Dumitru Dimitrios Dimitris Demetrios Дмитро Дмитрий Димитър Δημήτριος
andrey: Andriy Andrii Andrij Andrey Andrei Andrej Andrzej Andrew Andreas Andre Andres Андрій Андрей
vladimir: Volodymyr Volodimir Vladimir Wladimir Wlodzimierz Uladzimir Володимир Владимир
evgeniy: Yevgeniy Yevgeny Evgeny Evgeni Evgeniy Evgenii Jewgeni Jewgenij Eugen Eugene Eugeniusz Evghenii Yevhen Yevhenii Ievgen Ievgenii Evhen Eugenio Євген Евгений
evgeniya: Yevgeniya Yevheniia Evgenia Evgeniya Jewgenija Eugenia Eugenie Ievgeniia Євгенія Евгения
olga: Olha Olga Olgha Ольга
anna: Hanna Ganna Anna Ana Ania Ганна Анна Άννα
ekaterina: Kateryna Katerina Ekaterina Yekaterina Jekaterina Katarzyna Katharina Catherine Caterina Catalina Ecaterina Katherine Aikaterini Katarina Катерина Екатерина Αικατερίνη
maria: Mariya Maria Marija Mariia Marie Maryia Марія Мария Μαρία
viktoriya: Viktoriya Viktoria Victoria Wiktoria Viktoriia Vittoria Вікторія Виктория
svetlana: Svitlana Svetlana Swetlana Sviatlana Svjetlana Світлана Светлана
nataliya: Nataliya Natalia Natalya Nataliia Natalja Natalie Nathalie Natalija Наталія Наталья Наталия
tatyana: Tetyana Tetiana Tatiana Tatyana Tatjana Tatsiana Тетяна Татьяна
irina: Iryna Irina Irena Irene Irini Eirini Ірина Ирина Ειρήνη
ivan: Ivan Iwan Іван Иван
petr: Petro Pyotr Petr Piotr Peter Petru Pedro Pietro Pierre Petros Petar Петро Пётр Петър Πέτρος
pavel: Pavlo Pavel Pawel Paul Paulo Pablo Paolo Pavlos Павло Павел Παύλος
mikhail: Mykhailo Mykhaylo Mikhail Mikhailo Michail Mihail Michal Michael Michel Miguel Michele Mihai Михайло Михаил Μιχαήλ
vasiliy: Vasyl Vasily Vasiliy Vasilii Vasili Wassili Wasyl Vasile Bazyli Vasileios Vasilis Vassilis Василь Василий Βασίλειος
yuriy: Yuriy Yurii Yuri Yury Jurij Juri Yurij Iurii Юрій Юрий
vitaliy: Vitaliy Vitalii Vitaly Vitali Witalij Vitalie Віталій Виталий
nadezhda: Nadiya Nadiia Nadia Nadja Nadya Nadezhda Nadeschda Nadzieja Надія Надежда نادية
sofiya: Sofiya Sofia Sophia Sofiia Sophie Zofia Sofie Софія София Σοφία
grigoriy: Hryhoriy Hryhorii Grigoriy Grigory Grigorii Grigori Grzegorz Gregory Grigore Gregor Gregorio Григорій Григорий
oksana: Oksana Oxana Оксана
lyudmila: Lyudmyla Liudmyla Lyudmila Ludmila Ludmilla Liudmila Ljudmila Людмила
galina: Halyna Galina Halina Галина
valentina: Valentyna Valentina Walentyna Валентина
larisa: Larysa Larisa Larissa Лариса
igor: Ihor Igor Ігор Игорь
oleg: Oleh Oleg Олег
bogdan: Bohdan Bogdan Богдан
vadim: Vadym Vadim Wadim Вадим
maksim: Maksym Maxim Maksim Maxym Maxime Massimo Максим
artem: Artem Artyom Artiom Артем Артём
denis: Denys Denis Dennis Денис
konstantin: Kostiantyn Kostyantyn Konstantin Konstantyn Constantin Konstanty Konstantinos Constantine Костянтин Константин Κωνσταντίνος
stanislav: Stanislav Stanislaw Stanislau Станіслав Станислав
yaroslav: Yaroslav Iaroslav Jaroslav Jaroslaw Ярослав
vyacheslav: Viacheslav Vyacheslav Wjatscheslaw Wiaczeslaw Viaceslav Вячеслав В'ячеслав
anatoliy: Anatoliy Anatolii Anatoly Anatoli Anatol Анатолій Анатолий
fedor: Fedir Fyodor Fedor Fiodor Teodor Theodor Theodore Федір Фёдор Федор
ilya: Illia Ilya Ilia Ilja Iliya Illya Ілля Илья
yakov: Yakiv Yakov Iakov Jakow Jakov Jakub Jacob Jakob Yaakov Yakub Yaqub Yacoub Yakup Яків Яков يعقوب
stepan: Stepan Stefan Szczepan Stephen Stefano Esteban Stephane Степан Стефан
kirill: Kyrylo Kirill Kiril Kirilo Cyril Cyrille Кирило Кирилл Кирил
valeriy: Valeriy Valerii Valery Valeri Walerij Валерій Валерий
iosif: Yosyp Iosif Osip Josef Joseph Jozef Giuseppe Jose Yosef Йосип Иосиф
miroslav: Myroslav Miroslav Miroslaw Мирослав
lyubov: Lyubov Liubov Lubov Ljubow Любов Любовь
vera: Vira Vera Wiera Wera Віра Вера
zoya: Zoya Zoia Zoja Зоя
daria: Daria Darya Dariya Dariia Darja Дарія Дарья
anastasiya: Anastasiya Anastasia Anastasiia Anastazja Anastasija Анастасія Анастасия Αναστασία
kristina: Khrystyna Kristina Christina Krystyna Hristina Christine Cristina Kristine Khristina Христина Кристина
polina: Polina Paulina Pauline Поліна Полина
kseniya: Kseniya Ksenia Kseniia Xenia Ksenija Ксенія Ксения
valeriya: Valeriya Valeria Valeriia Waleria Валерія Валерия
veronika: Veronika Veronica Weronika Veronique Вероніка Вероника
yana: Yana Iana Jana Яна
anzhela: Anzhela Angela Anjela Andzhela Анжела
snezhana: Snizhana Snezhana Snjezana Сніжана Снежана
liliya: Liliya Lilia Lilija Liliia Lilya Лілія Лилия
klavdiya: Klavdiya Klavdiia Klavdia Claudia Klaudia Клавдія Клавдия
solomiya: Solomiya Solomiia Solomia Соломія
yustyna: Yustyna Iustyna Justyna Justina Justine Юстина
ulyana: Uliana Ulyana Ulijana Уляна Ульяна
margarita: Margaryta Margarita Margareta Маргарита
elizaveta: Yelyzaveta Elizaveta Yelizaveta Jelisaweta Elzbieta Elisabeth Elizabeth Elisabetta Єлизавета Елизавета
marina: Maryna Marina Марина
zhanna: Zhanna Jeanne Жанна
vladislav: Vladyslav Vladislav Wladyslaw Владислав
boris: Borys Boris Борис
gennadiy: Hennadiy Hennadii Gennadiy Gennady Gennadii Gennadi Геннадій Геннадий
georgiy: Heorhiy Heorhii Georgiy Georgy Georgii Georgi Georg George Jerzy Gheorghe Georgios Giorgos Yiorgos Giorgio Jorge Георгій Георгий Георги Γεώργιος Γιώργος
timofey: Tymofiy Tymofii Timofey Timofei Tymoteusz Timothy Тимофій Тимофей
matvey: Matviy Matvii Matvey Matvei Mateusz Matthew Matteo Mathieu Матвій Матвей
raisa: Raisa Rayisa Raissa Раїса Раиса
arseniy: Arseniy Arsenii Arsenij Арсеній Арсений
zakhar: Zakhar Zachar Захар
olesya: Olesya Olesia Olessia Олеся
yordan: Yordan Iordan Jordan Йордан
christos: Hristo Khristo Christo Christos Hristos Khristos Христо Χρήστος
ioannis: Ioannis Giannis Yannis Yiannis Ιωάννης Γιάννης
panagiotis: Panagiotis Panayiotis Panayotis Παναγιώτης
athanasios: Athanasios Athanassios Αθανάσιος
vasiliki: Vasiliki Vassiliki Βασιλική
dimitra: Dimitra Demetra Δήμητρα
spyridon: Spyridon Spiridon Σπυρίδων
"""

ARABIC_TURKISH_PERSIAN_AFRICAN = """
muhammad: Mohammed Muhammad Mohamed Mohamad Muhammed Mehmet Mohammad Mohamud Muhamed Muhamad Mohammod Mouhamed Mouhamad Mukhammed Mukhammad Magomed Mahomed Mamadou Mamadu Muhammadu Mohd Mhamed Mehmed Muhamet Мухаммед Мохаммед Магомед محمد
ahmad: Ahmed Ahmad Ahmet Akhmed Achmed Ahmadou Amadou Ahmadu Akhmad Ахмед Ахмад أحمد احمد
mahmud: Mahmoud Mahmud Mahmut Makhmud Mahmood Mehmood Махмуд محمود
mustafa: Mustafa Moustafa Mostafa Mustapha Moustapha Mostefa Мустафа مصطفى
ali: Ali Aly Али علي
umar: Omar Umar Omer Oumar Umaru Oumarou Омар Умар عمر
uthman: Othman Osman Usman Ousmane Uthman Otman Osmane Usmon Осман عثمان
yusuf: Youssef Yusuf Yousef Yousif Yusif Youcef Yussuf Jusuf Yussef Yousuf Yousouf Youssouf Yusup Юсуф يوسف
ibrahim: Ibrahim Ebrahim Brahim Ibrahima Ibragim Ibraheem Ибрагим إبراهيم ابراهيم
ismail: Ismail Ismael Esmail Ismayil Smail Ismaila Ismoil Исмаил إسماعيل اسماعيل
hasan: Hassan Hasan Hassane Hacene Alassane Alhassan Хасан Гасан حسن
husayn: Hussein Husain Hussain Hossein Husayn Huseyin Hosein Houssein Hocine Hussen Huseyn Husein Hossain Гусейн Хусейн حسين
khalid: Khaled Khalid Khaleed Halit Chaled Халид Халед خالد
said: Said Saeed Saied Sayeed Saeid Sayed Sayyid Seyyed Seyed Sayid Seyit Sayyed Саид سعيد سيد
hamid: Hamid Hameed Hamit Hamed حميد حامد
karim: Karim Kareem Kerim Krim Карим كريم
tariq: Tarek Tariq Tarik Tareq Tareck Тарик Тарек طارق
rashid: Rachid Rashid Rasheed Rashed Resit Рашид رشيد
nasir: Nasser Nasir Naser Nacer Nassir Naseer Насер ناصر
jamal: Jamal Gamal Djamel Cemal Jamel Jemal Djamal Джамал جمال
kamal: Kamal Kemal Kamel Камаль كمال
jafar: Jafar Jaafar Jaffar Cafer Djafar Jafer Джафар جعفر
abbas: Abbas Abas Аббас عباس
salih: Saleh Salih صالح
salah: Salah صلاح
faisal: Faisal Faysal Feisal Faycal Fayssal فيصل
walid: Walid Waleed Oualid Velid Валид وليد
samir: Samir Sameer Semir Самир سمير
bilal: Bilal Belal Bilel Билал بلال
hamza: Hamza Hamzah Hamsa حمزة
idris: Idris Idriss Idrissa Driss Edris Идрис إدريس ادريس
musa: Musa Moussa Mousa Mussa Musah Муса موسى
isa: Isa Issa Eissa Aissa Иса عيسى
yahya: Yahya Yahia Yehia Yahaya Yehya Яхья يحيى
zakariya: Zakaria Zakariya Zakariyya Zakari Закария زكريا
sulayman: Suleiman Sulaiman Soliman Slimane Suleyman Souleymane Sulayman Soulaimane Suleman Sulejman Сулейман سليمان
mansur: Mansour Mansur Mansoor Мансур منصور
nur: Nour Noor Nur Нур نور
adam: Adam Adama Adem Адам آدم
amin: Amin Amine Ameen Lamine Emin Амин أمين امين
anwar: Anwar Anouar Enver Anvar Анвар أنور انور
ayyub: Ayoub Ayub Ayyub Eyup Ayoob Аюб أيوب ايوب
bashir: Bashir Bachir Beshir Basheer Башир بشير
hakim: Hakim Hakeem Хаким حكيم
ishaq: Ishaq Ishak Ishaak Исхак إسحاق
jibril: Jibril Djibril Jibreel Cebrail جبريل
malik: Malik Malick Malek Melik Малик مالك
munir: Mounir Munir Moneer منير
nabil: Nabil Nabeel Nebil نبيل
qasim: Kassim Qasim Kasim Kacem Gasim Касым قاسم
rafiq: Rafik Rafiq Rafeek رفيق
sami: Sami Samy سامي
sharif: Sharif Cherif Sherif Serif شريف
tahir: Tahir Taher Tahar طاهر
wail: Wael Wail وائل
yasir: Yasser Yasir Yaser Jasser ياسر
zayd: Zaid Zayd Zeid زيد
ziyad: Ziad Ziyad زياد
fadi: Fadi Fady فادي
faris: Fares Faris فارس
habib: Habib Habeeb Habibou حبيب
hadi: Hadi Hady هادي
imran: Imran Emran Imrane عمران
jalal: Jalal Celal Djalal جلال
marwan: Marwan Merwan مروان
mazin: Mazen Mazin مازن
mukhtar: Mokhtar Mukhtar Moctar Mouctar مختار
osama: Osama Usama Oussama Ousama أسامة اسامة
raid: Raed Raid رائد
riyad: Riad Riyad Riyadh رياض
saad: Saad سعد
tawfiq: Tawfiq Tewfik Toufik Tawfik Tevfik توفيق
ilyas: Ilyas Elias Ilias Elyas Iliyas Ilyes إلياس
yunus: Yunus Younes Younis Yunis Юнус يونس
harun: Harun Haroun Haroon Харун هارون
dawud: Davud Dawood Dawud Daoud Davut داود
ramadan: Ramadan Ramazan Ramadhan Ramadane رمضان
rajab: Rajab Recep Radjab رجب
salim: Salim Selim Saleem Slim سليم
khalil: Khalil Halil Khaleel Khalilou Халил خليل
murad: Murad Murat Mourad Мурад مراد
reza: Reza Riza Rıza رضا
mahdi: Mehdi Mahdi Mekhdi مهدي
amir: Amir Emir Ameer Амир أمير امير
jawad: Javad Jawad Cevat Djawad جواد
umid: Omid Umid Umit امید
morteza: Morteza Murtaza Mortaza مرتضى
masud: Masoud Masud Mesut Massoud Masood مسعود
abubakr: Abubakr Abubakar Aboubakar Aboubacar Boubacar Abubakari Bubakar Aboubakr Абубакар أبوبكر
abdallah: Abdullah Abdallah Abdellah Abdulla Abdoulaye Abdullahi Abdillahi عبدالله
abdrahman: Abdelrahman Abdulrahman Abderrahmane Abdurrahman Abdirahman Abdourahmane Abdurahman عبدالرحمن
abdaziz: Abdelaziz Abdulaziz Abdoulaziz Abdelaaziz عبدالعزيز
abdqadir: Abdelkader Abdulkadir Abdelkadir Abdulqadir Abdoulkader Abdulkader عبدالقادر
abdkarim: Abdelkarim Abdulkarim Abdoulkarim عبدالكريم
abdhamid: Abdelhamid Abdulhamid Abdoulhamid عبدالحميد
abdmajid: Abdelmajid Abdulmajid Abdelmadjid Abdulmajeed عبدالمجيد
abdlatif: Abdellatif Abdullatif Abdulatif عبداللطيف
abdsalam: Abdessalam Abdulsalam Abdusalam Abdesselem Abdeslam عبدالسلام
abdwahab: Abdelwahab Abdulwahab Abdoulwahab عبدالوهاب
abdnasir: Abdelnasser Abdulnasser Abdennasser عبدالناصر
fatima: Fatima Fatma Fatemeh Fatimah Fatouma Fatoumata Fadime Fatimata Fatmeh Фатима فاطمة
maryam: Maryam Mariam Meryem Mariama Myriam Maryem Mariyam Miriam Марьям Мариам مريم
aisha: Aisha Aicha Ayesha Aysha Ayse Aishah Aissatou Aixa Ayshe Айша عائشة عايشة
khadija: Khadija Khadidja Khadijah Hatice Kadija Khadijatou Hadiza Hadija Kadiatou Хадиджа خديجة
zaynab: Zainab Zeinab Zaynab Zeynep Zineb Zenab Zaineb Зейнаб زينب
amina: Amina Aminah Emine Aminata Ameena Amena Aminat Амина أمينة امينة
layla: Layla Leila Laila Leyla Lejla Leilah Лейла ليلى
huda: Huda Houda Hoda Худа هدى
sara: Sara Sarah Sarra Сара سارة Σάρα
yasmin: Yasmin Yasmine Jasmin Yasemin Jasmine Yasmeen Jasmina Ясмин ياسمين
salma: Salma Selma Сальма سلمى
hiba: Heba Hiba Hebah Хиба هبة
iman: Iman Eman Imane Imen إيمان ايمان
zahra: Zahra Zehra Zahraa Zohra Zahrah Захра زهراء زهرة
hajar: Hajar Hagar Hacer Hadjer Hajara هاجر
hawa: Hawa Havva Hawaa Awa Хава حواء
asma: Asma Esma Asmaa Asmae أسماء اسماء
ruqayya: Ruqayya Rukiye Rokia Rukaya Roqaya Rokiatou رقية
samira: Samira Semira Sameera Самира سميرة
karima: Karima Kerime Kareema كريمة
latifa: Latifa Latifah Letifa لطيفة
malika: Malika Melike Malikah مليكة
naima: Naima Naeema Naimah نعيمة
rashida: Rachida Rashida Rasheeda رشيدة
suad: Souad Suad Soad
warda: Warda Ouarda وردة
dalia: Dalia Dalya Daliya داليا
rania: Rania Ranya رانيا
muna: Mona Muna Mouna منى
nawal: Nawal Naoual نوال
jamila: Jamila Djamila Cemile Jamilah Gamila Джамиля جميلة
shirin: Shirin Sirin Chirine شيرين
nasrin: Nasrin Nesrin Nasreen نسرين
chukwuemeka: Chukwuemeka Chukuemeka Emeka
oluwaseun: Oluwaseun Oluseun Seun
oluwafemi: Oluwafemi Olufemi Femi
oluwatosin: Oluwatosin Tosin
oluwatoyin: Oluwatoyin Toyin
babatunde: Babatunde Tunde
abiodun: Abiodun Biodun
ifeanyi: Ifeanyi Ifeanyichukwu
chiamaka: Chiamaka Amaka
uchenna: Uchenna Uche
adebayo: Adebayo Adebayor
kwasi: Kwasi Kwesi Akwasi Kouassi
kwadwo: Kwadwo Kojo Kwadjo Kodjo
kwabena: Kwabena Kobena Kobina
kwaku: Kwaku Kweku Kouakou
yaw: Yaw Yao Ekow
kofi: Kofi Koffi Fiifi
kwame: Kwame Kwamena Kouame Kwamina
adwoa: Adwoa Adjoa Adjowa
afua: Afua Efua Afia
akua: Akua Akuah
"""

EAST_ASIAN = """
zhang: Zhang Chang Cheung Cheong
li: Li Lee Yi Rhee Ri Ly
chen: Chen Chan
liu: Liu Lau Lao
huang: Huang Hwang Hoang Huynh
zhao: Zhao Chao Chiew
zhou: Zhou Chou Chow Chau
wu: Wu Ng Vu Vo
xu: Xu Hsu Tsui Hui
sun: Sun Suen Soon
zhu: Zhu Chu Choo
ma: Ma Mah
guo: Guo Kuo Kwok Quek Kok
he: He Ho Hoe
lin: Lin Lam Lim
luo: Luo Lo Law Loh
zheng: Zheng Cheang
liang: Liang Leung Leong
xie: Xie Hsieh Tse Cheah Seah
song: Song Sung Soong
feng: Feng Fung
deng: Deng Teng
cao: Cao Tsao Tso
yang: Yang Yeung Yeo
ye: Ye Yeh Yip Yap Ip
cai: Cai Tsai Tsoi Chua Chuah
pan: Pan Poon Phua
du: Du Tu Tou Do
jiang: Jiang Chiang Keung Kiang
zeng: Zeng Tseng Tsang
peng: Peng Pang Phang
xiao: Xiao Hsiao Siu Seow
gao: Gao Kao Ko
yuan: Yuan
wei: Wei Ngai
qian: Qian Chien
shen: Shen Shum Sham
zhong: Zhong Chung
jin: Jin Kam
kim: Kim Gim
park: Park Bak Pak
choi: Choi Chwe
jeong: Jeong Jung Joung
kang: Kang Gang
cho: Cho Jo
yoon: Yoon Youn
nguyen: Nguyen Nguen Ngyuen Nguyin Нгуен
tran: Tran Trần
pham: Pham Fam Фам
phan: Phan Фан
bui: Bui Buy Буй
duong: Duong Zuong Зыонг
"""

# Arabic family names (nisbas and trades) in their usual Latin forms; with the given names above,
# the stems that a glued article may precede (Almasri, Elmasri = al-Masri).
ARABIC_FAMILY = """
masri: Masri Masry Misri مصري
shami: Shami Chami Shamy شامي
alawi: Alawi Alaoui Alaui علوي
husayni: Husseini Hosseini Husaini Housseini حسيني
haddad: Haddad Hadad Хаддад حداد
zayn: Zein Zain Zayn Zeine زين
khatib: Khatib Khateeb Hatip خطيب
najjar: Najjar Najar Neccar نجار
qurashi: Qureshi Quraishi Kureshi Koraichi قريشي
siddiqi: Siddiqui Siddiqi Sediqi صديقي
hashimi: Hashimi Hachemi Hashemi Hasimi هاشمي
khuri: Khoury Khouri Khuri Kouri خوري
darwish: Darwish Darwiche Dervis درويش
shaykh: Sheikh Shaikh Cheikh Sheik Shaykh شيخ
mubarak: Mubarak Moubarak Mobarak مبارك
"""

ARABIC_STEMS = word_set("""ahmad ali hasan husayn said masri shami zayn khatib najjar haddad hakim rashid amin jabri ansari
    tamimi qahtani otaibi harbi shammari dosari mutairi zahrani ghamdi omari bakri baghdadi tikriti halabi homsi
    jazairi tunisi turki kurdi sudani yamani libi faruqi siddiqi qurashi hashimi husayni idrisi fasi khuri
    shaykh mubarak nasir mahmud khalil aziz hadi sharif mansur salim salih abbasi ayubi azzam dabbagh hariri
    jamal kabir maliki nuri rifai sabbagh sadr samarrai zubaydi zubi atrash asad bashir darwish fayed hamdan
    hamdi issa jabir karimi musa ubaydi qasim rahman rashed said shahin tahan wazir yusuf zaydi zaki""")
