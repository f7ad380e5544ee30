//! The magic values against the stub's source, and the simulator answering them over mTLS.

use sha2::{Digest, Sha256};

use super::values::ALL;

/// SHA-256 of each constant's string in `AssertionsConstants.java` of
/// `moneyadviceservice/pdp-test-harness` at ba609b5 (v1.1.5; unchanged since v1.1.4, 3faf60b),
/// in the stub's order: a value mistyped here or in [`super::values`] fails.
const STUB_DIGESTS: &[(&str, &str)] = &[
    (
        "ASSERTION_UAT_FOR_400_INVALID_REQUEST",
        "25ff19d8824aa4dca4b124b5db63744492999675b9fb1886c30f46bf4393ea2a",
    ),
    (
        "ASSERTION_UAT_FOR_400_INVALID_GRANT",
        "6510db6848feead5504290ef636e0688cd6718dbc5fbb058872154f236018b1c",
    ),
    (
        "ASSERTION_UAT_FOR_400_UNAUTHORISED_CLIENT",
        "a96ba05ca578b2f0129a3603fbc52a7abda2584818970044735d9097d27cdc83",
    ),
    (
        "EXPIRED_TOKEN_UAT",
        "c3a838b58a3a6902288867ee95d32603c825d56f63b5a3ad802b883ac80d8848",
    ),
    (
        "EXPIRED_TOKEN_PAT",
        "055e3369d6688f481db1f8487aa4245286cb0018e673da22da24de68c3531e91",
    ),
    (
        "NOT_EXPIRED_TOKEN_PAT",
        "6e04ebfe3875b346a99ff25cdca603f1c25df1e99bf068f1b70ef4824c3836a7",
    ),
    (
        "NOT_EXPIRED_TOKEN_UAT",
        "a7597e230466afef31a72df1cd6485bae7d1dbba4254e726f3d885457e4d89bb",
    ),
    (
        "TOKEN_WITH_ISSUER_AND_PERMISSIONS",
        "6d999d4e7c4976afac3fe3e440daee9aee643917e1d140a678b0671b59275bd6",
    ),
    (
        "TOKEN_WITH_VALID_SIGNATURE",
        "4d5f097994bcf938ce8b0579751ef407fe4c54a1e9a2efb62b62bfc1ec1a6a63",
    ),
    (
        "TOKEN_WITH_INVALID_SIGNATURE",
        "ca38db7f50ae9da136a563e3bc9e1b75ad311e92ba8215d2fe1806f2c434cab6",
    ),
    (
        "HAPPY_PATH_UAT_01",
        "4d5f097994bcf938ce8b0579751ef407fe4c54a1e9a2efb62b62bfc1ec1a6a63",
    ),
    (
        "HAPPY_PATH_PAT_01",
        "a9e10a95f08886ea23a2d71153d90836178b699813f319520a6994a9b2cf9bdd",
    ),
    (
        "HAPPY_PATH_UAT_02",
        "e35d0be34a9eeef884e7f0bcbc9e5c5becce61e1ababa9fdc04ee28d893313f8",
    ),
    (
        "HAPPY_PATH_PAT_02",
        "f264b49053586e679ad2d32dc0f718b4cb858375108a74625833f0d1d38ec000",
    ),
    (
        "HAPPY_PATH_UAT_03",
        "4b1b527b9afa4a4fb05e67a877922459aec50e2f35ac55f2d50c58828083b38c",
    ),
    (
        "HAPPY_PATH_PAT_03",
        "39e20c0c859c8a07e03a77ea26a2e0f91ed7c66529e623e33add7677a429e761",
    ),
    (
        "HAPPY_PATH_UAT_04",
        "d01a2888a3729f9ef638dc154e587f09d534eb2de290c56de91dc1bc8ceed023",
    ),
    (
        "HAPPY_PATH_PAT_04",
        "74c13ba3a12f1e05ab323e86f09213dd599d32958df931c6731b8226f471d414",
    ),
    (
        "HAPPY_PATH_UAT_05",
        "19443b3e4cc292b9e33a1080225280da0f261874c2471051cb334254a3969227",
    ),
    (
        "HAPPY_PATH_PAT_05",
        "da5306c404be342a340ec7cbecfc62907f4d84d83e8915a8aa1fdd5185c83b8e",
    ),
    (
        "HAPPY_PATH_UAT_06",
        "2c10fb90663a2a0d1df2f3253cb43af9135ff3c143b20d5417eed422c85224f8",
    ),
    (
        "HAPPY_PATH_PAT_06",
        "02569db37b58b9b475110eaf5e231c5987e04a416d806078e3d27d4798e21221",
    ),
    (
        "HAPPY_PATH_UAT_07",
        "c80425260fc149ae766d9f95d35c6ad4dc139652a074917065cfde22063ff3a8",
    ),
    (
        "HAPPY_PATH_PAT_07",
        "e6be8a3f60ad15a020bf0bd5bd03bf0207de1e03c6507cf665c7549516899b3d",
    ),
    (
        "HAPPY_PATH_UAT_08",
        "657f5e014296920e78c59a545319ed5c22cd0fb99fd5573eddfdd58c7c928bb5",
    ),
    (
        "HAPPY_PATH_PAT_08",
        "c632a559a643a558dca1b39d81eb11c281b30eff05baba3cbb355cf2d885a19c",
    ),
    (
        "HAPPY_PATH_UAT_09",
        "f196d17ecd5c9b9774a25ded0b6ad6236e49d4bc8dbf40cd04075ab620d627e1",
    ),
    (
        "HAPPY_PATH_PAT_09",
        "e61d68390dcea34c2730368a5860b76eb28e6e7223c85cbd63a21b49a604c8ff",
    ),
    (
        "HAPPY_PATH_UAT_10",
        "4270f2debcf4f0b832aea7636e81115c49613945ee1c2b609a540324d8f33b1b",
    ),
    (
        "HAPPY_PATH_PAT_10",
        "f963745198cb266efcd4b366f91bd6095173380530d7b3fefe3d3f805b38398e",
    ),
    (
        "HAPPY_PATH_UAT_11",
        "fdaae76a039c542f821f22b0e61940a906129bec7bc084d8f6f37b572142f48d",
    ),
    (
        "HAPPY_PATH_PAT_11",
        "bab9eb92dc2c5f6e8837941e6de5aa95ddacb46b68cb7a11dd08fa98481f6e9b",
    ),
    (
        "HAPPY_PATH_UAT_12",
        "e2b518c76cf84ad55f3d1662003b50e4162a3cbb5abbfd430601133c8738eda3",
    ),
    (
        "HAPPY_PATH_PAT_12",
        "640845f41799f8abbda6b291ec07c6077e395ce086c2e6c061e797a4a830a5db",
    ),
    (
        "HAPPY_PATH_UAT_13",
        "4f1809207c7deb4b642ba5f9f679de219f57857f78d00de6d1dd1084db410e20",
    ),
    (
        "HAPPY_PATH_PAT_13",
        "05336902ecf58a814ce553c639737216d609978b128c5bc77bf19f7ed99f9676",
    ),
    (
        "HAPPY_PATH_UAT_14",
        "35b8f98f98283990ad60c2a5b4037003061552287814c60316d07cee23fd0efa",
    ),
    (
        "HAPPY_PATH_PAT_14",
        "93243834ca321c862c9f556d77e6e8b17553fcf56e8f4aa539451f2564a9e537",
    ),
    (
        "HAPPY_PATH_UAT_15",
        "471b8915b69697cd39bfd0305fa2c48edfaba57c52d266e77992389c8259a252",
    ),
    (
        "HAPPY_PATH_PAT_15",
        "5a24d01bf8727beaa9c74fbd09f9d2bdff90216d0332e690e28ada07ecbfc329",
    ),
    (
        "HAPPY_PATH_UAT_16",
        "1a4cbcfaea7ba8cc4c2566ddec03a84fac7b6f97ba5995c76fcde9be4ad08e84",
    ),
    (
        "HAPPY_PATH_PAT_16",
        "07508f2c518d26f3185af142b45c3f4007ea2d58ad2d773786e3b6dcd0377136",
    ),
    (
        "HAPPY_PATH_UAT_17",
        "3af777cf41652e8e4f3c032cf1f5b7d1cd20c6212b779728218783700d4b20f3",
    ),
    (
        "HAPPY_PATH_PAT_17",
        "71786fc949ab36083bb077ae8ccf0c5f17dc9335004ab11db080f8a4640a8d9c",
    ),
    (
        "HAPPY_PATH_UAT_18",
        "f92343a9855eba6f794e36225b4336d33b3bddaafc30327d16e5082dddf0f6f6",
    ),
    (
        "HAPPY_PATH_PAT_18",
        "04eb28d66fdf54d57a6a5ae1b4252a893ec38d2a982a8279b49a1504c3c4394f",
    ),
    (
        "HAPPY_PATH_UAT_19",
        "7e849640e3d1e4524212785cc5a11278cdf4e4b0122e926215dd7170117a6fcf",
    ),
    (
        "HAPPY_PATH_PAT_19",
        "67c38e44645430119f73ce9da58f5000a55d8eb5ce213f317f0551555999e7d4",
    ),
    (
        "HAPPY_PATH_UAT_20",
        "b5af2481325e1e52bdf8a5cb0dc13f96959790aeee418686206ab2511c29fddf",
    ),
    (
        "HAPPY_PATH_PAT_20",
        "55f52241f4c310a657d1b5684beb79fa69981dfd34c0339ea22e24bee40a60ba",
    ),
    (
        "VALID_RPT_TOKEN",
        "58a73a8bd118739632960035676c20bc9403acc8acfa16339654c4a6077f985e",
    ),
    (
        "VALID_RPT_ACCESS_TOKEN",
        "1cb60e534f4767747ebbf826bbcf6df05dcd51d81dfc705391ccbaa0aa6cbda6",
    ),
    (
        "UNUSED_RPT_TOKEN",
        "d8e24db738f4892b0cf0fa39778851189d59312b99acbf5faec94ba0f8b9fe50",
    ),
    (
        "EXPIRED_RPT_TOKEN",
        "ce6737057db1808d6ad8e9a9f9a5feb4d0be26041c1da89b95956bfb00d022c8",
    ),
    (
        "EXPIRED_RPT_ACCESS_TOKEN",
        "c9b6cd3c6a53b961a26e62518bd20ac91b436a4dcdc64218cb95f71b5492b547",
    ),
    (
        "RPT_WRONG_TOKEN_TYPE",
        "1cfc01cec475d48423f015e4af4a84797dd5e660b4b058b24e603ab0e9c5a18d",
    ),
    (
        "RPT_EMPTY_PERM_ARRAY",
        "e8e491f7af20658b809824d7c93c16851ce53d7458f935c42efc542d7bd15af4",
    ),
    (
        "RPT_SCOPES_NO_OWNER",
        "79f3fc4ae22a26add96565dc9d4d507aeb3731e639fe3aa3a8f5e24888893461",
    ),
    (
        "RPT_EXPIRED_ACTIVE_TOKEN",
        "60dda3005ebda85c6587a43c731efdf8f50f17bf7efef6c8723cc760094dc8fd",
    ),
    (
        "RPT_EXPIRED_PERMISSION",
        "8d7801324cca3cc74da7d434e7a56317cd396daa31c52cd7c827825d05e37f74",
    ),
    (
        "ASSERTION_UAT_TOKEN_400_INCORRECT_SIGNATURE",
        "ccacfc6143239cbb0bfa1a916fabc63aaede0df7f8ae1b8237c2f3a0a3e19f4f",
    ),
    (
        "ASSERTION_UAT_TOKEN_401_EXPIRED_PAT",
        "20c4c35b2ce01668d1cc6997eb0f399fdeab54f73a463ade988dafcdb190c286",
    ),
    (
        "ASSERTION_UAT_TOKEN_429_TOO_MANY_REQUESTS",
        "946c5815569c2571a22913fe2bf648767cf1573b0d2feed9fd08a7a94962a75c",
    ),
    (
        "ASSERTION_UAT_TOKEN_500_SERVER_ERROR",
        "0f5e0f0fd9710c7318c1bfca10750bbe7c7f64027a59813c166d4d8bd697a375",
    ),
    (
        "ASSERTION_UAT_TOKEN_502_BAD_GATEWAY",
        "b93d39203a081b72cd2bbbf7e8e5875f8122b19dc9afba9eaa18188d03bbc087",
    ),
    (
        "ASSERTION_UAT_TOKEN_503_SERVICE_UNAVAILABLE",
        "4427d54b21f78896019a941c14ad4e4c16560ea9264c0d660169c99b82fea2d8",
    ),
    (
        "ASSERTION_UAT_TOKEN_504_GATEWAY_TIMEOUT",
        "5c005240dc64000d5696617928c176c326b09d07b95d08d6e89969b482fa498a",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_401_EXPIRED_PAT",
        "959bc2fcc75c67e8e1d426a1640b072fa99137ecb64c626a690d1c046bff2f1a",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_401_EXPIRED_PAT",
        "a6ef01e92a450468f357341e51108a0013153b188244e62de11ef3cf812c8a48",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_404_USER_REMOVED",
        "2c8d097c919c2ba96f99dc60d4d52f577950f1df59a5acb5d72ff9bccca0dc56",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_404_USER_REMOVED",
        "2fc67aff95f60edaa8907ba6c8873c65713d65c0c9faaff63c4efc6483e30f4e",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_429_TOO_MANY_REQUESTS",
        "bf3f67d236347656276f42efd6c96ce57e1b141487a81aed8e4b9bbf38e0f575",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_429_TOO_MANY_REQUESTS",
        "136a2a1a783b823c12f9436cc117d6b3ff7320f98b5e8a1ac1500ba7618ef45a",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_500_SERVER_ERROR",
        "fc90c22f35ce4e0c563b2013c506c625adfcd6638df12781b0807541ca4d0523",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_500_SERVER_ERROR",
        "8a89d7504f207a88ac633d3ded7f4064a6a0c6c456213576839e2ad9884cc7c8",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_502_BAD_GATEWAY",
        "24585d71a4f42077cdcba2d82d86e43622a1222456ebaa0d01e6be0e62ad21ba",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_502_BAD_GATEWAY",
        "f8e1d87e33d1bf047e3fc561011f7663d15aa75e0e9cc7fe3cf80220b180f329",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_503_SERVICE_UNAVAILABLE",
        "86efcdb2fb2bb997c0d64bccb2e49342d3db71decb1f345409ed0e9447d05128",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_503_SERVICE_UNAVAILABLE",
        "df138024f76dc80a68a4f6390716f0c9afa50c6ec420ecd02b0824bda9267195",
    ),
    (
        "ASSERTION_UAT_RREGURI_POST_504_GATEWAY_TIMEOUT",
        "e266e005ebbcf69b3d64af7f1a7b212f12318b544f708834d803c3cef4792933",
    ),
    (
        "ASSERTION_PAT_RREGURI_POST_504_GATEWAY_TIMEOUT",
        "18a2107134d0054d791c17e7ad2bbcaed62aa35c42e6274902f83228fa4c73e0",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_401_EXPIRED_PAT",
        "2ae46289a26c5318a26f88af1bd063ae26f7c289f12b6a2fde5b19b063ad66be",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_401_EXPIRED_PAT",
        "418e89ff7fc34f7df1d2228c9dbce2d70c7d9b1639f51d78a4da56bbccd35767",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_404_RESOURCE_NOT_FOUND",
        "014f7348c90a1f73fac03a843c28bdb4e91cdaf9c770bd48b7c0a4d2f2b10bcc",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_404_RESOURCE_NOT_FOUND",
        "762cf5a97152868ef1bc6101d14aba7da06846a05c2ddb8405c2c57f9365b3d5",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_429_TOO_MANY_REQUESTS",
        "f3cc02c40e5b86c26cfc38f432e34020917dc350e15fc91c010c8ffd7ad0faf5",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_429_TOO_MANY_REQUESTS",
        "cb8aef25bf2ce0e333c3168e30465be73b95c4586dddaf10a586231bf3a618e7",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_500_SERVER_ERROR",
        "7810d8de7113db292ab4efe496004bf8491ba42e557a53137b69be465b4fff53",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_500_SERVER_ERROR",
        "56ab4acb46c3d5b511c600f12bd2bf8945b05763b5b5b46fc7c4ade1e7192f22",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_502_BAD_GATEWAY",
        "72a6883572790f9e3c500537b7c0dcd1578ed66fa773a94ba4dac76d25f600ba",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_502_BAD_GATEWAY",
        "fa7ff318e83ca52735c3e32ae19dac9c9e5807b80977435a0a308999369c3092",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_503_SERVICE_UNAVAILABLE",
        "a40724eae41531161c301d070d4ccd47a5ed1705093ff5be0e5e0f9e8b94cb79",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_503_SERVICE_UNAVAILABLE",
        "d21519346e633f0f0bc10680b72cad8089cbf5e48bd227b4006020f7e2ad26ca",
    ),
    (
        "ASSERTION_UAT_RREGURI_PATCH_504_GATEWAY_TIMEOUT",
        "e11541ebe97035431f2bf20a59bbe6fef351de6eedb7f65779a030a2bfb57ced",
    ),
    (
        "ASSERTION_PAT_RREGURI_PATCH_504_GATEWAY_TIMEOUT",
        "a980b1a4072bf3509bb1be8a1ed6cf555a79952e664f72954e7e327cca61a399",
    ),
    (
        "ASSERTION_UAT_RREGURI_DELETE_401_EXPIRED_PAT",
        "11d783e05aaea52e5ef25935138a9caadb32ccefbd7fc4338a3c2e71fffbb319",
    ),
    (
        "ASSERTION_PAT_RREGURI_DELETE_401_EXPIRED_PAT",
        "cee095d9b2640e4d02427a879c5336e524a06caf89746d9faf1b31f90f4d825d",
    ),
    (
        "ASSERTION_UAT_RREGURI_DELETE_429_TOO_MANY_REQUESTS",
        "e0844b2dd6d90e924e461fd8e05f2ddc118d3ab08912e557769ebb9d2fab01e4",
    ),
    (
        "ASSERTION_PAT_RREGURI_DELETE_429_TOO_MANY_REQUESTS",
        "6af521c043020c2e5f93ac22328aeee578ffc2e4a8399b21ac9d1a8cda2969bf",
    ),
    (
        "ASSERTION_UAT_RREGURI_DELETE_500_SERVER_ERROR",
        "d492914b720859728211a22afb0bac785121ac67c1ef3c3ac5351e38396936bf",
    ),
    (
        "ASSERTION_PAT_RREGURI_DELETE_500_SERVER_ERROR",
        "e1509112d14297901c69d3d7eb755dfe62b09b43e4c00a3d93e02aa0bd5d950b",
    ),
    (
        "ASSERTION_UAT_RREGURI_DELETE_502_BAD_GATEWAY",
        "c0fc3113cbb91ae726ea0e3e7650e2f3f86fcfbf28ef8605142fa44ab559ec62",
    ),
    (
        "ASSERTION_PAT_RREGURI_DELETE_502_BAD_GATEWAY",
        "3025f2d81c50920369755fef0d03d0b69df1c39c91811520e570ae26d2e6bf80",
    ),
    (
        "ASSERTION_UAT_RREGURI_DELETE_503_SERVICE_UNAVAILABLE",
        "30923056da1451a177628f9516a2ebdbbe3cc04a26b4f167f6f279f94ff5ef01",
    ),
    (
        "ASSERTION_PAT_RREGURI_DELETE_503_SERVICE_UNAVAILABLE",
        "59e5ed9709b6b36739806e2d901c43b6635184d9246bfa490dafb3a606126031",
    ),
    (
        "ASSERTION_UAT_RREGURI_DELETE_504_GATEWAY_TIMEOUT",
        "a7a1ac3f7f5e74535a85bd4ef6ae8a69af8b91de36ea9ef81f86c7f7b195673b",
    ),
    (
        "ASSERTION_PAT_RREGURI_DELETE_504_GATEWAY_TIMEOUT",
        "6f545ed85339c1ff99f180754503eb57c78e47d6dcda1f2378db6d24ca775918",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_400_INCORRECT_SIGNATURE",
        "81af9e117c410564f1be6392bd397dd03c583c40760e0ab472f19b8036c29e73",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_401_EXPIRED_PAT",
        "c9cfecef758cdc6cc376d110626b44fb68c36344079ee2d57726c2c91a11560b",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_404_RESOURCE_NOT_FOUND",
        "9d17e13521522207da412492045e1787010f978b7ab02693ac4feeca70485033",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_500_SERVER_ERROR",
        "b3d612f376da7cfe38940df33246d6d4d104e3dc9b87a16a7289bfa830dd34df",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_502_BAD_GATEWAY",
        "1f18e4d1e25defd555323289c61de02282d3f3c260fd6ae1fb7f50f6e3a9fab4",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_503_SERVICE_UNAVAILABLE",
        "e01d1993123b793ad5006e23f6bed7c5f664dfedfe95e0530921c9272e69e775",
    ),
    (
        "ASSERTION_RPT_INTROSPECT_504_GATEWAY_TIMEOUT",
        "6f23badaa9660c94236f0dcd5cc3d893633ccd8e780985f2bcdfe6b3293641e9",
    ),
    (
        "ASSERTION_UAT_PERM_401_EXPIRED_PAT",
        "7aae81ade2c38fb68e0216304f2917364c29b1d40358f65636f0aa0440bb5166",
    ),
    (
        "ASSERTION_PAT_PERM_401_EXPIRED_PAT",
        "4486666b0dcc638b2ed98609eadac627652d9517f827fb32371c7fa8187b5cfc",
    ),
    (
        "ASSERTION_UAT_PERM_404_RESOURCE_NOT_FOUND",
        "e151c305a5680b2ebc9c31b0ffddc98b89fb4c7741febbc0383f041864b5ebb3",
    ),
    (
        "ASSERTION_PAT_PERM_404_RESOURCE_NOT_FOUND",
        "de596f1dc77616a1b36ca71dfd47fbfbc404186a7cf127fbc5614d0f5dfb610d",
    ),
    (
        "ASSERTION_UAT_PERM_500_SERVER_ERROR",
        "cc32ee28bade2c058b7ff6914b44615051c0d9a907a0f09809978ad079f036f7",
    ),
    (
        "ASSERTION_PAT_PERM_500_SERVER_ERROR",
        "b428d81b74466ea03c8d17e3368136905f4050d7c3eaac91d4ca5931c9e9f59c",
    ),
    (
        "ASSERTION_UAT_PERM_502_BAD_GATEWAY",
        "0bd846ebdb14b557b6b4c193dbfcaa415ca94e3d8af83eb234afe9cce4278c39",
    ),
    (
        "ASSERTION_PAT_PERM_502_BAD_GATEWAY",
        "8931e474ac35d4882623f865ea4a514e8a8f090143d3dee8fe11766af4f6fd4b",
    ),
    (
        "ASSERTION_UAT_PERM_503_SERVICE_UNAVAILABLE",
        "5ce941d8842bce23ca1b811d40e861d240d7860c997f34f053b3fc99d566db36",
    ),
    (
        "ASSERTION_PAT_PERM_503_SERVICE_UNAVAILABLE",
        "03e68851cea4d5e611e5c7bc28cf75b2a0058f391b0a9a379be5f5af3c6d0ce2",
    ),
    (
        "ASSERTION_UAT_PERM_504_GATEWAY_TIMEOUT",
        "568873eec5444504f7f4be2dd5ecb54d144b00989226b989ca35819881162244",
    ),
    (
        "ASSERTION_PAT_PERM_504_GATEWAY_TIMEOUT",
        "ba2afe9c56f338a96bd070d18a741c3312e620662f72ddcee470638d5004d226",
    ),
];

#[test]
fn every_constant_is_the_stubs_byte_for_byte() {
    assert_eq!(ALL.len(), 126, "AssertionsConstants.java holds 126 strings");
    assert_eq!(ALL.len(), STUB_DIGESTS.len());
    for ((name, value), (stub_name, digest)) in ALL.iter().zip(STUB_DIGESTS) {
        assert_eq!(name, stub_name, "constants out of the stub's order");
        let got = hex::encode(Sha256::digest(value.as_bytes()));
        assert_eq!(&got, digest, "{name} is not the stub's string");
    }
}

#[test]
fn each_user_swaps_its_uat_for_its_pat_and_every_pat_script_names_a_user() {
    use super::values::*;
    assert_eq!(super::USERS.len(), 52);
    let user = |uat| super::user_by_uat(uat).map(|u| u.pat);
    assert_eq!(user(HAPPY_PATH_UAT_07), Some(HAPPY_PATH_PAT_07));
    assert_eq!(
        user(ASSERTION_UAT_RREGURI_POST_429_TOO_MANY_REQUESTS),
        Some(ASSERTION_PAT_RREGURI_POST_429_TOO_MANY_REQUESTS)
    );
    for (name, value) in ALL {
        // The stub's /perm 504 user holds TOKEN_WITH_VALID_SIGNATURE, not its PAT constant.
        if name.starts_with("ASSERTION_PAT_") && *name != "ASSERTION_PAT_PERM_504_GATEWAY_TIMEOUT" {
            let uat_name = name.replace("ASSERTION_PAT_", "ASSERTION_UAT_");
            let uat = ALL.iter().find(|(n, _)| *n == uat_name).map(|p| p.1);
            assert_eq!(uat.and_then(user), Some(*value), "{name}");
        }
    }
}

/// A simulator on port 0 with a fresh dev PKI, and a client presenting the provider's
/// certificate.
async fn sim() -> (tempfile::TempDir, crate::cas::CasSim, reqwest::Client) {
    use pdp_provider::tls::pki::files;
    let dir = tempfile::tempdir().unwrap();
    pdp_provider::tls::pki::init(dir.path()).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let sim = crate::cas::CasSim::start(any, any, &crate::tls::sim_tls(dir.path()))
        .await
        .unwrap();
    let identity = pdp_provider::tls::client::Identity {
        ca: &dir.path().join(files::CA),
        cert: &dir.path().join(files::PROVIDER),
        key: &dir.path().join(files::PROVIDER_KEY),
    };
    let client = pdp_provider::tls::client::mtls_client(identity, |b| b).unwrap();
    (dir, sim, client)
}

/// What one call got: status, `Retry-After`, body.
async fn answer(req: reqwest::RequestBuilder) -> (u16, Option<u64>, String) {
    let r = req
        .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (r.status().as_u16(), retry_after, r.text().await.unwrap())
}

fn token_form(uat: &str) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", uat),
        ("scope", "uma_protection"),
    ]
}

fn pei() -> String {
    format!("urn:pei:{}:{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4())
}

fn register_body(name: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "description": "Scheme", "match_status": "match-yes",
                       "resource_scopes": ["value", "owner"],
                       "inbound_request_id": uuid::Uuid::new_v4()})
}

/// Checks an answer: the status, an empty body unless `body` is given, and `Retry-After` from 2
/// to 10 on a 429 only.
fn check(what: &str, got: &(u16, Option<u64>, String), status: u16, body: Option<&str>) {
    assert_eq!(got.0, status, "{what}: {got:?}");
    assert_eq!(got.2, body.unwrap_or(""), "{what}: body");
    match got.1 {
        Some(s) => assert!(status == 429 && (2..=10).contains(&s), "{what}: {got:?}"),
        None => assert_ne!(status, 429, "{what}: 429 without Retry-After"),
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_each_magic_uat_as_the_stub() {
    use super::values::*;
    let (_dir, sim, client) = sim().await;
    let url = format!("{}/token", sim.base_url());
    let errors = [
        (
            ASSERTION_UAT_FOR_400_INVALID_REQUEST,
            r#"{"error":"invalid_request"}"#,
        ),
        (
            ASSERTION_UAT_FOR_400_INVALID_GRANT,
            r#"{"error":"invalid_grant"}"#,
        ),
        (
            ASSERTION_UAT_FOR_400_UNAUTHORISED_CLIENT,
            r#"{"error":"unauthorised_client"}"#,
        ),
    ];
    for (uat, body) in errors {
        let got = answer(client.post(&url).form(&token_form(uat))).await;
        check("token", &got, 400, Some(body));
    }
    for (uat, status) in [
        (ASSERTION_UAT_TOKEN_400_INCORRECT_SIGNATURE, 400),
        (ASSERTION_UAT_TOKEN_401_EXPIRED_PAT, 401),
        (ASSERTION_UAT_TOKEN_429_TOO_MANY_REQUESTS, 429),
        (ASSERTION_UAT_TOKEN_500_SERVER_ERROR, 500),
        (ASSERTION_UAT_TOKEN_502_BAD_GATEWAY, 502),
        (ASSERTION_UAT_TOKEN_503_SERVICE_UNAVAILABLE, 503),
        (ASSERTION_UAT_TOKEN_504_GATEWAY_TIMEOUT, 504),
    ] {
        let got = answer(client.post(&url).form(&token_form(uat))).await;
        check(super::name_of(uat).as_deref().unwrap(), &got, status, None);
    }
    for user in super::USERS
        .iter()
        .filter(|u| super::on_token(u.uat).is_none())
    {
        let got = answer(client.post(&url).form(&token_form(user.uat))).await;
        assert_eq!(got.0, 200, "{}", user.name);
        let v: serde_json::Value = serde_json::from_str(&got.2).unwrap();
        assert_eq!(v["access_token"], user.pat, "{}", user.name);
        assert_eq!(v["token_type"], "pension_dashboard_pat");
    }
    // Any other UAT: a PAT of the simulator's own, for its `sub`, as before.
    let own = crate::cas::mint(serde_json::json!({"sub": "someone"}));
    let got = answer(client.post(&url).form(&token_form(&own))).await;
    assert_eq!(got.0, 200);
    assert!(super::name_of(&got.2).is_none());
    let calls = sim.state.calls();
    let last = calls.last().unwrap();
    assert_eq!(last.credential.as_deref(), Some("sub someone"));
    let scripted = calls.iter().find(|c| c.status == 429).unwrap();
    assert_eq!(
        scripted.credential.as_deref(),
        Some("ASSERTION_UAT_TOKEN_429_TOO_MANY_REQUESTS")
    );
    assert!(scripted.retry_after.is_some());
}

#[tokio::test]
async fn registration_calls_answer_each_magic_pat_as_the_stub() {
    use super::values::*;
    let (_dir, sim, client) = sim().await;
    let base = sim.base_url();
    let pat_of = |uat| super::user_by_uat(uat).unwrap().pat;
    // The stub's users are reached through the token exchange, as a provider reaches them.
    for u in super::USERS {
        answer(
            client
                .post(format!("{base}/token"))
                .form(&token_form(u.uat)),
        )
        .await;
    }
    let register = [
        (ASSERTION_UAT_RREGURI_POST_401_EXPIRED_PAT, 401),
        (ASSERTION_UAT_RREGURI_POST_404_USER_REMOVED, 404),
        (ASSERTION_UAT_RREGURI_POST_429_TOO_MANY_REQUESTS, 429),
        (ASSERTION_UAT_RREGURI_POST_500_SERVER_ERROR, 500),
        (ASSERTION_UAT_RREGURI_POST_502_BAD_GATEWAY, 502),
        (ASSERTION_UAT_RREGURI_POST_503_SERVICE_UNAVAILABLE, 503),
        (ASSERTION_UAT_RREGURI_POST_504_GATEWAY_TIMEOUT, 504),
    ];
    for (uat, status) in register {
        let req = client
            .post(format!("{base}/rreguri"))
            .bearer_auth(pat_of(uat))
            .json(&register_body(&pei()));
        check("POST /rreguri", &answer(req).await, status, None);
    }
    // A happy-path PAT registers, and owns what it registered.
    let req = client
        .post(format!("{base}/rreguri"))
        .bearer_auth(HAPPY_PATH_PAT_03)
        .json(&register_body(&pei()));
    let got = answer(req).await;
    assert_eq!(got.0, 201, "{got:?}");
    let id: serde_json::Value = serde_json::from_str(&got.2).unwrap();
    let id = id["resource_id"].as_str().unwrap().to_owned();
    let patch = [
        (ASSERTION_UAT_RREGURI_PATCH_401_EXPIRED_PAT, 401),
        (ASSERTION_UAT_RREGURI_PATCH_404_RESOURCE_NOT_FOUND, 404),
        (ASSERTION_UAT_RREGURI_PATCH_429_TOO_MANY_REQUESTS, 429),
        (ASSERTION_UAT_RREGURI_PATCH_500_SERVER_ERROR, 500),
        (ASSERTION_UAT_RREGURI_PATCH_502_BAD_GATEWAY, 502),
        (ASSERTION_UAT_RREGURI_PATCH_503_SERVICE_UNAVAILABLE, 503),
        (ASSERTION_UAT_RREGURI_PATCH_504_GATEWAY_TIMEOUT, 504),
    ];
    for (uat, status) in patch {
        let req = client
            .patch(format!("{base}/rreguri/{id}"))
            .bearer_auth(pat_of(uat))
            .json(&serde_json::json!({"match_status": "match-yes"}));
        check("PATCH /rreguri", &answer(req).await, status, None);
    }
    let delete = [
        (ASSERTION_UAT_RREGURI_DELETE_401_EXPIRED_PAT, 401),
        (ASSERTION_UAT_RREGURI_DELETE_429_TOO_MANY_REQUESTS, 429),
        (ASSERTION_UAT_RREGURI_DELETE_500_SERVER_ERROR, 500),
        (ASSERTION_UAT_RREGURI_DELETE_502_BAD_GATEWAY, 502),
        (ASSERTION_UAT_RREGURI_DELETE_503_SERVICE_UNAVAILABLE, 503),
        (ASSERTION_UAT_RREGURI_DELETE_504_GATEWAY_TIMEOUT, 504),
    ];
    for (uat, status) in delete {
        let req = client
            .delete(format!(
                "{base}/rreguri/{id}?deletion_reason=match-withdrawn"
            ))
            .bearer_auth(pat_of(uat));
        check("DELETE /rreguri", &answer(req).await, status, None);
    }
    let perm = [
        (ASSERTION_UAT_PERM_401_EXPIRED_PAT, 401),
        (ASSERTION_UAT_PERM_404_RESOURCE_NOT_FOUND, 404),
        (ASSERTION_UAT_PERM_500_SERVER_ERROR, 500),
        (ASSERTION_UAT_PERM_502_BAD_GATEWAY, 502),
        (ASSERTION_UAT_PERM_503_SERVICE_UNAVAILABLE, 503),
    ];
    for (uat, status) in perm {
        let req = client
            .post(format!("{base}/perm"))
            .bearer_auth(pat_of(uat))
            .json(&serde_json::json!({"resource_id": id, "resource_scopes": ["value", "owner"]}));
        check("POST /perm", &answer(req).await, status, None);
    }
    // The stub scripts /perm's 504 on ASSERTION_PAT_PERM_504_GATEWAY_TIMEOUT, a PAT no user of
    // its holds (that user's is TOKEN_WITH_VALID_SIGNATURE): the constant still answers 504.
    let req = client
        .post(format!("{base}/perm"))
        .bearer_auth(ASSERTION_PAT_PERM_504_GATEWAY_TIMEOUT)
        .json(&serde_json::json!({"resource_id": id, "resource_scopes": ["value", "owner"]}));
    check("POST /perm 504", &answer(req).await, 504, None);
    // The happy-path owner still patches and deletes its own resource.
    let req = client
        .delete(format!(
            "{base}/rreguri/{id}?deletion_reason=match-withdrawn"
        ))
        .bearer_auth(HAPPY_PATH_PAT_03);
    assert_eq!(answer(req).await.0, 204);
}

#[tokio::test]
async fn introspection_answers_each_magic_and_seeded_rpt_as_the_stub() {
    use super::values::*;
    let (_dir, sim, client) = sim().await;
    let base = sim.base_url();
    let introspect = |pat: &str, rpt: &str| {
        client
            .post(format!("{base}/introspect"))
            .bearer_auth(pat)
            .form(&[("token", rpt)])
    };
    for (rpt, status) in [
        (ASSERTION_RPT_INTROSPECT_400_INCORRECT_SIGNATURE, 400),
        (ASSERTION_RPT_INTROSPECT_401_EXPIRED_PAT, 401),
        (ASSERTION_RPT_INTROSPECT_404_RESOURCE_NOT_FOUND, 404),
        (ASSERTION_RPT_INTROSPECT_500_SERVER_ERROR, 500),
        (ASSERTION_RPT_INTROSPECT_502_BAD_GATEWAY, 502),
        (ASSERTION_RPT_INTROSPECT_503_SERVICE_UNAVAILABLE, 503),
        (ASSERTION_RPT_INTROSPECT_504_GATEWAY_TIMEOUT, 504),
    ] {
        // Before the PAT is looked at: any PAT meets the script.
        let got = answer(introspect("not-a-pat", rpt)).await;
        check("POST /introspect", &got, status, None);
    }
    answer(
        client
            .post(format!("{base}/token"))
            .form(&token_form(HAPPY_PATH_UAT_02)),
    )
    .await;
    let req = client
        .post(format!("{base}/rreguri"))
        .bearer_auth(HAPPY_PATH_PAT_02)
        .json(&register_body(&pei()));
    let created: serde_json::Value = serde_json::from_str(&answer(req).await.2).unwrap();
    let mine = created["resource_id"].as_str().unwrap();
    let body = |got: (u16, Option<u64>, String)| {
        assert_eq!(got.0, 200, "{got:?}");
        serde_json::from_str::<serde_json::Value>(&got.2).unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let v = body(answer(introspect(HAPPY_PATH_PAT_02, EXPIRED_RPT_TOKEN)).await);
    assert_eq!(v["active"], false);
    let v = body(answer(introspect(HAPPY_PATH_PAT_02, RPT_WRONG_TOKEN_TYPE)).await);
    assert_eq!(v["token_type"], "pension_dashboard_pmt");
    assert_eq!(v["permissions"][0]["resource_id"], mine);
    let v = body(answer(introspect(HAPPY_PATH_PAT_02, RPT_EMPTY_PERM_ARRAY)).await);
    assert_eq!(v["permissions"], serde_json::json!([]));
    let v = body(answer(introspect(HAPPY_PATH_PAT_02, RPT_SCOPES_NO_OWNER)).await);
    assert_eq!(
        v["permissions"][0]["resource_scopes"],
        serde_json::json!(["value"])
    );
    let v = body(answer(introspect(HAPPY_PATH_PAT_02, RPT_EXPIRED_ACTIVE_TOKEN)).await);
    assert_eq!(v["active"], true);
    assert!(v["exp"].as_i64().unwrap() < now);
    let v = body(answer(introspect(HAPPY_PATH_PAT_02, RPT_EXPIRED_PERMISSION)).await);
    assert_eq!(v["active"], true);
    assert!(v["permissions"][0]["exp"].as_i64().unwrap() < now);
    // VALID_RPT_TOKEN's resource is HAPPY_PATH_PAT_01's.
    let got = answer(introspect(HAPPY_PATH_PAT_02, VALID_RPT_TOKEN)).await;
    assert_eq!(got.0, 401, "{got:?}");
    let last = sim.state.calls().pop().unwrap();
    assert_eq!(
        last.credential.as_deref(),
        Some("HAPPY_PATH_PAT_02, RPT VALID_RPT_TOKEN")
    );
}
