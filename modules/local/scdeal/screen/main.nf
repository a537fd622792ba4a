process SCDEAL_SCREEN {
    tag "${meta.id}"
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(cells, stageAs: '_inputs/cells/*'), path(bulk, stageAs: '_inputs/bulk/*'), path(model, stageAs: '_inputs/model/*')

    output:
    tuple val(meta), path("${prefix}/${meta.id}_screen.h5ad")                            , emit: h5ad
    tuple val(meta), path("${prefix}/screen_probabilities.tsv")                          , emit: probabilities
    tuple val(meta), path("${prefix}/screen_ranking.tsv")                                , emit: ranking
    path("${prefix}/{screen_cluster_ranking.tsv,screen_auc.tsv,screen_summary.json,screen_history.tsv}"), emit: results
    path("${prefix}/*_mqc.*")                                                            , emit: mqc
    path("versions.yml")                                                                 , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    def pretrained = model ? "--model ${model}" : ''
    """
    scdeal_screen.py \\
        --cells ${cells} \\
        --bulk ${bulk} \\
        ${pretrained} \\
        --sample ${meta.id} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        ${task.ext.flags} \\
        ${args}

    scdeal_versions.py "${task.process}" > versions.yml
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/${meta.id}_screen.h5ad ${prefix}/screen_probabilities.tsv ${prefix}/screen_ranking.tsv ${prefix}/screen_cluster_ranking.tsv ${prefix}/screen_auc.tsv ${prefix}/screen_summary.json ${prefix}/screen_history.tsv ${prefix}/${meta.id}_screen_ranking_mqc.tsv ${prefix}/${meta.id}_screen_heatmap_mqc.json
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
